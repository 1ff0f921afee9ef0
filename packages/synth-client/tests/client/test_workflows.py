"""Workflow notebooks executed headless with nbclient against the local service."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from opsin.synth.workflows import create_submit_notebook, inject_parameters, sanitize_batch_name

from ._helpers import TEST_GENERATOR

pytestmark = pytest.mark.slow


def _execute(path: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    return nb


def _outputs(nb: nbformat.NotebookNode) -> str:
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or json.dumps(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_sanitize_batch_name() -> None:
    assert sanitize_batch_name("my first previews!") == "my first previews_"
    assert sanitize_batch_name("../..hidden/x") == "_..hidden_x"
    assert sanitize_batch_name("...dots") == "dots"
    assert sanitize_batch_name("") == "unnamed"
    assert len(sanitize_batch_name("a" * 300)) == 100


def test_submit_notebook_writes_download_notebook_and_both_run(client_env, tmp_path: Path) -> None:
    path = create_submit_notebook(TEST_GENERATOR, client_env.url, records_dir=tmp_path / "records")
    folder = path.parent
    assert folder.parent == tmp_path / "records"
    assert folder.name.startswith("workflow_")
    assert path.name.startswith("submit_batch_")
    assert path.suffix == ".ipynb"
    nb = nbformat.read(path, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    assert ["parameters"] in tags
    assert ["injected-parameters"] in tags
    assert client_env.token not in path.read_text()  # the token is read from the environment at run time
    # confirmed: submits and writes the download notebook beside it
    inject_parameters(path, NUM_JOBS=3, IS_PREVIEW=False, BATCH_NAME="wf batch/1", CONFIRM_SUBMISSION=True)
    out = _outputs(_execute(path))
    assert "Submitted batch" in out
    (download,) = folder.glob("download_batch_*.ipynb")
    batch_id = next(line.split()[2] for line in out.splitlines() if line.startswith("Submitted batch"))
    assert batch_id in download.read_text()
    out = _outputs(_execute(download))
    assert "3/3 jobs completed" in out
    target = folder / "downloads" / "wf batch_1" / f"batch_ID_{batch_id}"
    assert (target / "batch_id.txt").read_text() == batch_id
    jobs = [p for p in target.iterdir() if p.is_dir()]
    assert len(jobs) == 3
    assert all((p / "job.json").is_file() for p in jobs)


def test_submit_and_record_without_confirmation_only_estimates(client_env, tmp_path: Path) -> None:
    from opsin.synth import Session
    from opsin.synth.workflows import submit_and_record

    sesh = Session(client_env.token, TEST_GENERATOR, client_env.url)
    before = len(sesh.get_batches_last_n_days(1))
    record = submit_and_record(sesh, [{"param1": 4}, {"param1": 2}], False, "x", False, folder=tmp_path)
    assert record.batch is None
    assert record.estimated_samples == 6
    assert "Not submitted" in record.report()
    assert not list(tmp_path.iterdir())
    assert len(sesh.get_batches_last_n_days(1)) == before
