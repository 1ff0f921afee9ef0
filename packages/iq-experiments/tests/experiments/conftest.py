"""Fixtures of the experiments tests: an isolated mlflow store per test, datasets, fake scripts.

The datasets are the suite's synthetic ones (``tests/_datasets.py``), so these tests run on any clone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated mlflow SQLite database, created once (migrations take seconds)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-template")
    db = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture(autouse=True)
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_template_db: Path) -> Iterator[str]:
    """Point every mlflow default at ``tmp_path/mlflow`` and restore mlflow's process-wide URIs afterwards."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    folder = tmp_path / "mlflow"
    folder.mkdir()
    shutil.copyfile(mlflow_template_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("OPSIN_IQ_MLFLOW_DIR", str(folder))
    monkeypatch.setenv("OPSIN_HOME", str(tmp_path / "opsin-home"))
    monkeypatch.setenv("OPSIN_NO_PROGRESS", "1")
    monkeypatch.chdir(tmp_path)
    yield uri
    tracking_utils._tracking_uri, registry_utils._registry_uri = saved


@pytest.fixture
def coco_ds(tmp_path: Path, synthetic_template: Path) -> Path:
    """A copy of the synthetic COCO dataset (10 images, 130 annotations) at ``tmp_path/data/ds_coco_dataset``."""
    dst = tmp_path / "data" / "ds_coco_dataset"
    shutil.copytree(synthetic_template / "ds_coco_dataset", dst)
    return dst


@pytest.fixture
def coco_detect(synthetic_template: Path) -> Path:
    """The synthetic detections file (ground truth plus scores)."""
    return synthetic_template / "coco_detect.json"


@pytest.fixture
def fake_script() -> Path:
    return SCRIPTS / "fake_train.py"


@pytest.fixture
def fake_env(tmp_path: Path, coco_detect: Path) -> dict[str, str]:
    """Environment for ``fake_train.py``: where its detections come from and where it logs its calls."""
    return {"FAKE_DETECT_JSON": str(coco_detect), "FAKE_CALL_LOG": str(tmp_path / "calls.log")}


def calls(env: dict[str, str]) -> list[str]:
    """Lines ``fake_train.py`` appended to its call log (one per start)."""
    path = Path(env["FAKE_CALL_LOG"])
    return path.read_text().splitlines() if path.exists() else []
