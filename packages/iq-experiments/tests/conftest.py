"""Fixtures of the iq tests.

Every behaviour runs on datasets the suite builds itself (``tests/_datasets.py``: a COCO dataset, uint16 GeoTIFFs
with georeferencing and their GeoJSON, RGB TIFFs), so a fresh clone exercises everything. The tests that check the
original's numbers on its real test images form an extra layer: they use the ``real_*`` fixtures, found through
``OPSIN_FIXTURES`` (default ``<repo>/../shared/fixtures``), and skip with the reason when that folder is absent.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from _datasets import build_all

REPO = Path(__file__).resolve().parents[3]


def fixtures_root() -> Path:
    """The real fixtures folder: ``$OPSIN_FIXTURES`` or ``<repo>/../shared/fixtures``."""
    env = os.environ.get("OPSIN_FIXTURES", "").strip()
    return Path(env) if env else REPO.parent / "shared" / "fixtures"


FIXTURES = fixtures_root() / "iquaflow-testdata"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSIN_NO_PROGRESS", "1")
    monkeypatch.delenv("OPSIN_IQ_NO_CACHE", raising=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(root, n)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    os.chmod(dst, os.stat(dst).st_mode | stat.S_IWUSR)
    return dst


@pytest.fixture(scope="session")
def synthetic_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic datasets, built once per session (tests get copies)."""
    return build_all(tmp_path_factory.mktemp("synthetic") / "test_datasets")


@pytest.fixture
def datasets(tmp_path: Path, synthetic_template: Path) -> Path:
    """A writable copy of the synthetic datasets and coco_detect.json under tmp_path/test_datasets."""
    return _copy(synthetic_template, tmp_path / "test_datasets")


@pytest.fixture
def coco_ds(datasets: Path) -> Path:
    return datasets / "ds_coco_dataset"


@pytest.fixture
def geo_ds(datasets: Path) -> Path:
    return datasets / "ds_geo_dataset"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"real iquaflow fixtures not found at {FIXTURES} (set OPSIN_FIXTURES; default ../shared/fixtures)")
    return FIXTURES


@pytest.fixture
def real_datasets(tmp_path: Path, fixtures_dir: Path) -> Path:
    """A writable copy of the real fixture datasets and coco_detect.json under tmp_path/test_datasets."""
    root = tmp_path / "test_datasets"
    root.mkdir()
    for name in ("ds_coco_dataset", "ds_geo_dataset", "ds_inria_dataset"):
        _copy(fixtures_dir / name, root / name)
    shutil.copy(fixtures_dir / "coco_detect.json", root / "coco_detect.json")
    os.chmod(root / "coco_detect.json", 0o644)
    return root


@pytest.fixture
def real_coco_ds(real_datasets: Path) -> Path:
    return real_datasets / "ds_coco_dataset"


@pytest.fixture
def real_geo_ds(real_datasets: Path) -> Path:
    return real_datasets / "ds_geo_dataset"
