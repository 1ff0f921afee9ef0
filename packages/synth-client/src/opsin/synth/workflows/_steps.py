"""The steps the workflow notebooks call: submit with a record, pick the download folder, download and report."""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from opsin.core import get_logger
from opsin.synth.workflows._notebooks import create_download_notebook, sanitize_batch_name

if TYPE_CHECKING:
    from opsin.synth.batch import Batch
    from opsin.synth.session import Session

__all__ = [
    "SubmissionRecord",
    "batch_download_folder",
    "download_and_report",
    "portal_url",
    "show_batch_media",
    "submit_and_record",
]

_log = get_logger("opsin.synth")
_MAX_PREVIEWS = 20


def portal_url(server: str, batch_id: str) -> str:
    """The user-portal page of a batch."""
    return f"{server.rstrip('/')}/portal/batches/{batch_id}/"


@attrs.frozen
class SubmissionRecord:
    """What :func:`submit_and_record` did.

    Attributes:
        estimated_samples: samples the batch needs.
        batch: the submitted batch (``None`` when not confirmed).
        download_notebook: the download notebook written for it.
        portal: link to the batch in the user portal.
    """

    estimated_samples: int
    batch: Batch | None = None
    download_notebook: Path | None = None
    portal: str | None = None

    def report(self) -> str:
        """Human-readable summary for the notebook."""
        if self.batch is None:
            return (
                f"Not submitted: the batch needs {self.estimated_samples} samples. "
                "Set CONFIRM_SUBMISSION = True and run this cell again to submit."
            )
        return (
            f"Submitted batch {self.batch.batch_id} ({self.batch.num_jobs} jobs, {self.estimated_samples} samples).\n"
            f"Portal: {self.portal}\nDownload notebook: {self.download_notebook}"
        )


def submit_and_record(
    sesh: Session,
    job_params: list[dict[str, Any]],
    is_preview: bool,
    batch_name: str | None,
    confirm: bool,
    *,
    folder: str | os.PathLike[str] | None = None,
    embed_token: bool = False,
) -> SubmissionRecord:
    """Estimate, and when ``confirm`` is true submit and write the download notebook into ``folder``.

    Args:
        sesh: the session.
        job_params: the jobs.
        is_preview: previews or videos.
        batch_name: batch name.
        confirm: submit (else only estimate).
        folder: the workflow folder receiving ``download_batch_<stamp>.ipynb`` (current folder when ``None``).
        embed_token: write the token into the download notebook.
    """
    estimated = sum(sesh.estimate_samples(job_params, is_preview=is_preview, batch_name=batch_name))
    if not confirm:
        return SubmissionRecord(estimated)
    batch = sesh.submit(job_params, is_preview=is_preview, batch_name=batch_name)
    notebook = create_download_notebook(
        batch.batch_id,
        sesh.generator,
        sesh.server,
        folder=Path(folder) if folder else Path.cwd(),
        embed_token=embed_token,
        token=sesh.token,
    )
    _log.info("batch %s submitted; download notebook %s", batch.batch_id, notebook)
    return SubmissionRecord(estimated, batch, notebook, portal_url(batch.server, batch.batch_id))


def batch_download_folder(root: str | os.PathLike[str], batch: Batch) -> Path:
    """``<root>/<sanitised batch name>/batch_ID_<id>/``."""
    return Path(root) / sanitize_batch_name(batch.name) / f"batch_ID_{batch.batch_id}"


def _age(batch: Batch) -> str:
    created = batch.get_batch_data().get("created")
    if not created:
        return "unknown age"
    then = dt.datetime.fromisoformat(str(created))
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    seconds = int((dt.datetime.now(dt.UTC) - then).total_seconds())
    return f"{dt.timedelta(seconds=max(0, seconds))} since created"


def download_and_report(
    batch: Batch, target: str | os.PathLike[str], *, await_timeout: float | None = 0, quiet: bool = False
) -> str:
    """Optionally wait, download what is finished into ``target`` and report ``"k/N jobs completed"``.

    Args:
        batch: the batch.
        target: batch folder.
        await_timeout: seconds to wait for unfinished jobs first (0 or ``None``: do not wait); on timeout the
            finished jobs are still downloaded.
        quiet: no progress bars.
    """
    from opsin.synth.errors import BatchTimeoutError

    if await_timeout:
        try:
            batch.await_completion(polling_interval=1.0, timeout=await_timeout, progress=not quiet)
        except BatchTimeoutError as exc:
            _log.warning("%s", exc)
    done = batch.download(target, quiet=quiet)
    remaining = batch.get_num_jobs_remaining()
    completed = batch.num_jobs - remaining
    state = "all downloaded" if done else "run this cell again later"
    return f"{completed}/{batch.num_jobs} jobs completed ({_age(batch)}); {state} -> {target}"


def _job_folders(target: Path) -> list[Path]:
    return sorted(p for p in target.iterdir() if p.is_dir() and (p / "job.json").is_file())


def show_batch_media(batch: Batch, target: str | os.PathLike[str], *, seed: int | None = None) -> Any:
    """A previews grid (at most 20 random jobs) for previews, else one random job's video as a GIF.

    Returns:
        The previews figure, the GIF path, or ``None`` when nothing is downloaded yet.
    """
    from opsin.synth.common.vis.images import view_previews

    folders = _job_folders(Path(target))
    if not folders:
        return None
    chooser = random.Random(seed)
    videos: Sequence[Path] = [f / "video.mp4" for f in folders if (f / "video.mp4").is_file()]
    if batch.is_preview or not videos:
        picked = chooser.sample(folders, k=min(_MAX_PREVIEWS, len(folders)))
        return view_previews(picked)
    from opsin.synth.common.vis.notebook import display_video_as_gif

    video = chooser.choice(list(videos))
    return display_video_as_gif(video, video.parent / "output" / "preview.gif", max_frames=120, scale=0.5)
