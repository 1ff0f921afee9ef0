from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "iquaflow-testdata"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSIN_NO_PROGRESS", "1")
    monkeypatch.delenv("OPSIN_IQ_NO_CACHE", raising=False)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"iquaflow fixtures not found at {FIXTURES} (expected <repo>/../shared/fixtures)")
    return FIXTURES


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(root, n)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    os.chmod(dst, os.stat(dst).st_mode | stat.S_IWUSR)
    return dst


@pytest.fixture
def datasets(tmp_path: Path, fixtures_dir: Path) -> Path:
    """A writable copy of the three fixture datasets and coco_detect.json under tmp_path/test_datasets."""
    root = tmp_path / "test_datasets"
    root.mkdir()
    for name in ("ds_coco_dataset", "ds_geo_dataset", "ds_inria_dataset"):
        _copy(fixtures_dir / name, root / name)
    shutil.copy(fixtures_dir / "coco_detect.json", root / "coco_detect.json")
    os.chmod(root / "coco_detect.json", 0o644)
    return root


@pytest.fixture
def coco_ds(datasets: Path) -> Path:
    return datasets / "ds_coco_dataset"


@pytest.fixture
def geo_ds(datasets: Path) -> Path:
    return datasets / "ds_geo_dataset"
