"""Workflow notebooks as saved reports: a submit notebook that writes its download notebook beside it.

Each notebook starts with a cell tagged ``parameters`` (defaults) followed by a cell tagged ``injected-parameters``
(the concrete values), the layout papermill uses, so the notebooks also run under papermill or
``jupyter nbconvert --execute``. The token comes from ``OPSIN_SYNTH_TOKEN`` unless embedding was asked for.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from opsin.core import atomic_write_text

__all__ = [
    "create_download_notebook",
    "create_submit_notebook",
    "inject_parameters",
    "new_workflow_folder",
    "sanitize_batch_name",
    "timestamp",
]

_STAMP = "%Y_%m_%d_T_%H_%M_%S"


def timestamp(now: dt.datetime | None = None) -> str:
    """``YYYY_MM_DD_T_HH_MM_SS`` of ``now`` (local time by default)."""
    return (now or dt.datetime.now()).strftime(_STAMP)


def sanitize_batch_name(name: str | None) -> str:
    """Folder-safe batch name: characters other than word characters, ``.``, space and ``-`` become ``_``.

    Leading dots are stripped and the result is cut to 100 characters; an empty name becomes ``unnamed``.
    """
    text = re.sub(r"[^\w. -]", "_", name or "").lstrip(".")[:100]
    return text or "unnamed"


def new_workflow_folder(records_dir: str | os.PathLike[str] = "workflow_records") -> Path:
    """Create ``<records_dir>/workflow_<stamp>/`` (a numeric suffix avoids collisions within one second)."""
    base = Path(records_dir).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    stamp = timestamp()
    candidate = base / f"workflow_{stamp}"
    index = 1
    while True:
        try:
            candidate.mkdir()
            return candidate.resolve()
        except FileExistsError:
            candidate = base / f"workflow_{stamp}_{index}"
            index += 1


def _code(source: str, tags: tuple[str, ...] = ()) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _md(source: str) -> NotebookNode:
    return nbformat.v4.new_markdown_cell(source.strip("\n"))


def _assignments(values: Mapping[str, Any]) -> str:
    return "\n".join(f"{name} = {value!r}" for name, value in values.items())


def _parameter_cells(defaults: str, injected: Mapping[str, Any]) -> list[NotebookNode]:
    return [
        _code(defaults, ("parameters",)),
        _code("# Parameters\n" + _assignments(injected), ("injected-parameters",)),
    ]


def inject_parameters(notebook_path: str | os.PathLike[str], **values: Any) -> Path:
    """Set values in a workflow notebook's ``injected-parameters`` cell (added after ``parameters`` if missing).

    Args:
        notebook_path: the notebook.
        **values: ``NAME=value`` pairs (Python literals) that override the defaults.

    Returns:
        The notebook path.
    """
    path = Path(notebook_path)
    nb = nbformat.read(path, as_version=4)
    cells = list(nb.cells)
    injected = next((c for c in cells if "injected-parameters" in c.metadata.get("tags", [])), None)
    if injected is None:
        position = next((i + 1 for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])), 0)
        injected = _code("# Parameters", ("injected-parameters",))
        cells.insert(position, injected)
    lines = [line for line in injected.source.splitlines() if line.split("=", 1)[0].strip() not in values]
    injected.source = "\n".join([*lines, _assignments(values)])
    nb.cells = cells
    atomic_write_text(path, nbformat.writes(nb))
    return path


def _write(nb: NotebookNode, path: Path) -> Path:
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.validate(nb)
    atomic_write_text(path, nbformat.writes(nb))
    return path


_SUBMIT_DEFAULTS = """
import os

TOKEN = os.environ.get("OPSIN_SYNTH_TOKEN", "")  # never saved in the notebook unless embedding was asked for
GENERATOR = "visionfit-flagship-v0.1.0"
SERVER = None  # None: OPSIN_SYNTH_SERVER, else http://127.0.0.1:8000/
WORKFLOW_DIR = "."  # the download notebook is written here
NUM_JOBS = 10
IS_PREVIEW = True
BATCH_NAME = "my first previews!"
CONFIRM_SUBMISSION = False  # set to True (and run the last cell again) to submit
"""


def create_submit_notebook(
    generator: str,
    server: str | None = None,
    records_dir: str | os.PathLike[str] = "workflow_records",
    embed_token: bool = False,
    *,
    token: str | None = None,
) -> Path:
    """Write ``<records_dir>/workflow_<stamp>/submit_batch_<stamp>.ipynb`` for ``generator``.

    Args:
        generator: generator name.
        server: service URL written into the notebook (``None``: the environment's default at run time).
        records_dir: folder of the workflow records.
        embed_token: write the token into the notebook instead of reading ``OPSIN_SYNTH_TOKEN`` at run time.
        token: the token to embed (default: the current ``OPSIN_SYNTH_TOKEN``).

    Returns:
        The notebook's path.
    """
    folder = new_workflow_folder(records_dir)
    injected: dict[str, Any] = {"GENERATOR": generator, "SERVER": server, "WORKFLOW_DIR": str(folder)}
    if embed_token:
        injected = {"TOKEN": token if token is not None else os.environ.get("OPSIN_SYNTH_TOKEN", ""), **injected}
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _md(
            f"# Submit a batch: `{generator}`\n\nBuild job parameters, review their distribution and the estimated "
            "samples, then submit. Submission writes a download notebook for the batch into this folder."
        ),
        *_parameter_cells(_SUBMIT_DEFAULTS, injected),
        _code(
            """
from opsin.synth import Session
from opsin.synth.visionfit.api import VisionFitSession
from opsin.synth.workflows import submit_and_record

# VisionFit generators sample by their joint rules (matching image sizes, exercise categories)
sesh = (VisionFitSession if "visionfit" in GENERATOR else Session)(TOKEN, GENERATOR, SERVER)
print(f"{sesh.generator} on {sesh.server}: {len(sesh.parameter_info)} parameters")
"""
        ),
        _md("## Job parameters\n\nEdit the loop to fix the values you care about; the rest is sampled."),
        _code("job_params = [sesh.sample_input() for _ in range(NUM_JOBS)]"),
        _code(
            """
import pandas as pd
from opsin.synth.visionfit.vis import visualize_job_params

df = pd.DataFrame.from_records(job_params)
display(df.head())
visualize_job_params(job_params)
"""
        ),
        _md("## Estimate and submit"),
        _code(
            """
estimated = sum(sesh.estimate_samples(job_params, is_preview=IS_PREVIEW))
balance = sesh.get_account()["sample_balance"]
print(f"Estimated samples: {estimated} (balance: {balance})")
"""
        ),
        _code(
            """
record = submit_and_record(sesh, job_params, IS_PREVIEW, BATCH_NAME, CONFIRM_SUBMISSION, folder=WORKFLOW_DIR)
print(record.report())
"""
        ),
    ]
    return _write(nb, folder / f"submit_batch_{timestamp()}.ipynb")


_DOWNLOAD_DEFAULTS = """
import os

TOKEN = os.environ.get("OPSIN_SYNTH_TOKEN", "")
GENERATOR = ""
SERVER = None
BATCH_ID = ""
DOWNLOAD_ROOT = "downloads"  # relative to this notebook's folder
AWAIT_TIMEOUT_S = 600  # wait up to this long for jobs before downloading (0: download what is finished)
"""


def create_download_notebook(
    batch_id: str,
    generator: str,
    server: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    embed_token: bool = False,
    *,
    token: str | None = None,
) -> Path:
    """Write ``download_batch_<stamp>.ipynb`` for ``batch_id`` into ``folder`` (a new workflow folder if ``None``).

    ``embed_token`` writes ``token`` (default: the current ``OPSIN_SYNTH_TOKEN``) into the notebook.

    Returns:
        The notebook's path.
    """
    target = Path(folder) if folder is not None else new_workflow_folder()
    target.mkdir(parents=True, exist_ok=True)
    injected: dict[str, Any] = {"GENERATOR": generator, "SERVER": server, "BATCH_ID": str(batch_id)}
    if embed_token:
        injected = {"TOKEN": token if token is not None else os.environ.get("OPSIN_SYNTH_TOKEN", ""), **injected}
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _md(f"# Download batch `{batch_id}`\n\nRe-run the download cell until every job is completed."),
        *_parameter_cells(_DOWNLOAD_DEFAULTS, injected),
        _code(
            """
from opsin.synth import Session
from opsin.synth.workflows import batch_download_folder, download_and_report, show_batch_media

sesh = Session(TOKEN, GENERATOR, SERVER)
batch = sesh.batch_from_api(BATCH_ID)
target = batch_download_folder(DOWNLOAD_ROOT, batch)
print(f"Batch {batch.batch_id} ({batch.num_jobs} jobs) -> {target}")
"""
        ),
        _md("## Download batch"),
        _code("print(download_and_report(batch, target, await_timeout=AWAIT_TIMEOUT_S))"),
        _md("## Review"),
        _code(
            """
from opsin.synth.visionfit.vis import summarize_batch_results_as_dataframe, visualize_batch_results

df = summarize_batch_results_as_dataframe(target)
df
"""
        ),
        _code("show_batch_media(batch, target)"),
        _code("visualize_batch_results(target)"),
    ]
    return _write(nb, target / f"download_batch_{timestamp()}.ipynb")
