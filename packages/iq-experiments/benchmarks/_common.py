"""Helpers shared by the iq-experiments benchmarks (not a test module)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "iquaflow-testdata"


def coco_copy(dest: Path) -> Path:
    """Copy the COCO fixture dataset into ``dest`` (benchmarks never write next to the fixtures)."""
    if not FIXTURES.is_dir():
        raise SystemExit(f"fixtures not found at {FIXTURES}")
    out = dest / "ds_coco_dataset"
    shutil.copytree(FIXTURES / "ds_coco_dataset", out)
    for root, dirs, files in os.walk(out):
        for n in dirs + files:
            os.chmod(os.path.join(root, n), 0o755 if n in dirs else 0o644)
    os.chmod(out, 0o755)
    return out
