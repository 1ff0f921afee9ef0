"""Download safety against the real service: foreign folders, bad statuses, bad archives, partial failure,
expired URLs, resumption and overwrite."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from opsin.synth import Batch, Session
from opsin.synth.errors import DownloadError

from ._helpers import TEST_GENERATOR, completed_batch, signed_url, write_zip


@pytest.fixture(scope="module")
def session(service) -> Session:
    return Session(service.token, TEST_GENERATOR, service.url)


def _job_files(folder: Path, job_id: str) -> set[str]:
    return {p.name for p in (folder / job_id).iterdir()}


def test_download_writes_marker_and_every_job(session: Session, tmp_path: Path) -> None:
    batch = completed_batch(session, [{"param1": 2}, {"param1": 3}, {"param1": 1}])
    target = tmp_path / "a" / "b"
    assert batch.download(target, quiet=True) is True
    assert (target / "batch_id.txt").read_bytes() == batch.batch_id.encode()
    assert sorted(p.name for p in target.iterdir()) == sorted([*batch.job_ids, "batch_id.txt"])
    for job_id, params in zip(batch.job_ids, batch.job_params):
        assert _job_files(target, job_id) >= {"job.json", "labels.json", "video_preview.png"}
        job = json.loads((target / job_id / "job.json").read_text())
        assert job["params"] == params
        assert len(json.loads((target / job_id / "labels.json").read_text())["images"]) == params["param1"]
    # resumable: a second call finds everything and rewrites nothing
    stamp = (target / batch.job_ids[0] / "job.json").stat().st_mtime_ns
    assert batch.download(target, quiet=True) is True
    assert (target / batch.job_ids[0] / "job.json").stat().st_mtime_ns == stamp


def test_folder_of_another_batch_is_refused(session: Session, tmp_path: Path) -> None:
    first = completed_batch(session, [{"param1": 1}])
    second = completed_batch(session, [{"param1": 1}])
    target = tmp_path / "batch"
    first.download(target, quiet=True)
    for overwrite in (False, True):
        with pytest.raises(DownloadError) as info:
            second.download(target, overwrite=overwrite, quiet=True)
        assert first.batch_id in str(info.value)
        assert second.batch_id in str(info.value)
    assert not (target / second.job_ids[0]).exists()
    assert (target / "batch_id.txt").read_text() == first.batch_id
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="not empty"):
        second.download(foreign, quiet=True)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_one_failing_job_keeps_the_others(service, session: Session, tmp_path: Path) -> None:
    batch = completed_batch(session, [{"param1": 1}, {"param1": 2}, {"param1": 3}])
    target = tmp_path / "partial"
    ok_first, missing, corrupt = batch.job_ids
    # the first job is downloaded earlier; afterwards one result is purged (404) and one is corrupt
    batch.download(target, quiet=True)
    for job_id in (missing, corrupt):
        import shutil

        shutil.rmtree(target / job_id)
    (service.results_dir / f"{missing}.zip").unlink()
    data = (service.results_dir / f"{corrupt}.zip").read_bytes()
    (service.results_dir / f"{corrupt}.zip").write_bytes(data[: len(data) // 2] + b"\0" * (len(data) - len(data) // 2))
    with pytest.raises(DownloadError) as info:
        batch.download(target, quiet=True)
    failed = info.value.failed
    assert set(failed) == {missing, corrupt}
    assert "404" in failed[missing]
    assert "zip" in failed[corrupt].lower() or "corrupt" in failed[corrupt].lower()
    assert (target / ok_first / "job.json").is_file()  # kept
    assert not (target / missing).exists()
    assert not (target / corrupt).exists()
    assert not (target / ".partial").exists()


def test_zip_slip_member_is_refused(service, session: Session, tmp_path: Path) -> None:
    batch = completed_batch(session, [{"param1": 1}, {"param1": 1}])
    evil, other = batch.job_ids
    write_zip(
        service.results_dir / f"{evil}.zip",
        {f"{evil}/job.json": b"{}", f"{evil}/../../escaped.txt": b"owned"},
    )
    target = tmp_path / "slip" / "batch"
    with pytest.raises(DownloadError) as info:
        batch.download(target, quiet=True)
    assert set(info.value.failed) == {evil}
    assert ".." in info.value.failed[evil]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert (target / other / "job.json").is_file()


def test_member_outside_the_job_root_is_refused(service, session: Session, tmp_path: Path) -> None:
    batch = completed_batch(session, [{"param1": 1}])
    (job_id,) = batch.job_ids
    write_zip(service.results_dir / f"{job_id}.zip", {f"{job_id}/job.json": b"{}", "other/job.json": b"{}"})
    with pytest.raises(DownloadError) as info:
        batch.download(tmp_path / "root", quiet=True)
    assert "root" in info.value.failed[job_id]
    assert not (tmp_path / "root" / "other").exists()


class _ExpireFirstSummary(httpx.BaseTransport):
    """Real HTTP transport that, once, replaces the summary's result URLs by genuinely expired signed ones."""

    def __init__(self, server: str, secret: str) -> None:
        self._inner = httpx.HTTPTransport()
        self._server, self._secret = server, secret
        self.expired_served = 0
        self.result_statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if "/api/results/" in request.url.path:
            self.result_statuses.append(response.status_code)
        if request.url.path.endswith("/summary/") and self.expired_served == 0:
            response.read()
            body = response.json()
            for run in body["job_runs"]:
                if run["result_url"]:
                    run["result_url"] = signed_url(self._server, self._secret, run["id"], int(time.time()) - 60)
                    self.expired_served += 1
            return httpx.Response(response.status_code, json=body)
        return response


def test_expired_url_is_refreshed(service, session: Session, tmp_path: Path) -> None:
    done = completed_batch(session, [{"param1": 2}, {"param1": 1}])
    transport = _ExpireFirstSummary(service.url, service.secret)
    with httpx.Client(transport=transport) as client:
        batch = Batch.from_api(service.token, done.batch_id, service.url, http_client=client)
        assert batch.download(tmp_path / "expired", quiet=True) is True
    assert transport.expired_served == 2
    assert transport.result_statuses.count(410) == 2
    assert transport.result_statuses.count(200) == 2
    for job_id in done.job_ids:
        assert (tmp_path / "expired" / job_id / "job.json").is_file()


def test_overwrite_replaces_jobs_and_in_progress_returns_false(service, session: Session, tmp_path: Path) -> None:
    batch = completed_batch(session, [{"param1": 1}])
    target = tmp_path / "ow"
    batch.download(target, quiet=True)
    (job_id,) = batch.job_ids
    (target / job_id / "job.json").write_text("edited")
    batch.download(target, quiet=True)
    assert (target / job_id / "job.json").read_text() == "edited"  # kept without overwrite
    batch.download(target, overwrite=True, quiet=True)
    assert json.loads((target / job_id / "job.json").read_text())["params"]["param1"] == 1
    # a batch still in progress: True only when every job is on disk
    videos = Session(session.token, "visionfit-v0.4.0", session.server)
    slow = videos.submit([{"num_reps": 20, "image_width": 128, "image_height": 128}] * 4, batch_name="still running")
    try:
        done = slow.download(tmp_path / "slow", quiet=True)
        on_disk = [(tmp_path / "slow" / j / "job.json").is_file() for j in slow.job_ids]
        assert done == all(on_disk)
        assert not done  # minutes of video cannot be finished right after submit
    finally:
        slow.cancel()
