"""A crashing generator plugin (raising, or killing its worker process) fails its job and returns the reservation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from svc_helpers import TEST_GEN, batch_body, wait_batch

PLUGIN = """
import os

from opsin.synth.server.generators import Generator, ParamSpec


class CrashGenerator(Generator):
    name = "crash-test-v0.1.0"
    version = "0.1.0"
    description = "Crashes on purpose (test plugin)."
    supports_preview = True
    params = (
        ParamSpec("mode", "str", "raise", {"choices": ["raise", "exit"]}, "How to crash."),
        ParamSpec("state", "uuid", None, None, "Seed source."),
    )

    def estimate(self, params, is_preview):
        return 1 if is_preview else 3

    def run(self, params, is_preview, seed, out_dir, cancel_event=None):
        (out_dir / "partial.txt").write_text("half done")
        if params["mode"] == "exit":
            os._exit(13)
        raise RuntimeError("boom: the plugin crashed on purpose")
"""


def _install_plugin(folder: Path) -> None:
    folder.mkdir()
    (folder / "crash_plugin.py").write_text(PLUGIN)
    dist = folder / "crash_plugin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [opsin.synth.generators]
        crash = crash_plugin:CrashGenerator
        """)
    )


@pytest.mark.slow
def test_crashing_generator_fails_job_and_returns_reservation(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_service,  # type: ignore[no-untyped-def]
) -> None:
    plugins = tmp_path / "plugins"
    _install_plugin(plugins)
    # an installed plugin: on sys.path with its entry point (worker processes inherit sys.path)
    monkeypatch.syspath_prepend(str(plugins))
    svc = make_service(workers=2)
    data = svc.settings.data_dir
    client = svc.user(samples=50)
    names = [g["name"] for g in client.get("/api/jobs/").json()]
    assert "crash-test-v0.1.0" in names  # registered through the entry-point group

    raising = client.post("/api/batch/", json=batch_body(2, generator="crash-test-v0.1.0")).json()
    assert client.get("/api/account/").json()["sample_balance"] == 44  # reserved 2 x 3
    summary = wait_batch(client, raising["id"])
    assert [job["status"] for job in summary["job_runs"]] == ["failed", "failed"]
    assert all(job["result_url"] is None and not job["in_progress"] for job in summary["job_runs"])
    detail = client.get(f"/api/job_runs/{raising['job_runs'][0]['id']}/").json()
    assert "boom: the plugin crashed on purpose" in detail["error"]
    assert detail["actual_samples"] == 0
    assert client.get("/api/account/").json() == {
        "username": client.get("/api/account/").json()["username"],
        "sample_balance": 50, "reserved_samples": 0, "samples_rendered_total": 0, "result_bytes": 0,
    }  # fmt: skip

    dying = client.post("/api/batch/", json=batch_body(1, generator="crash-test-v0.1.0", mode="exit")).json()
    summary = wait_batch(client, dying["id"])
    assert summary["job_runs"][0]["status"] == "failed"
    assert "worker" in client.get(f"/api/job_runs/{dying['job_runs'][0]['id']}/").json()["error"]
    assert client.get("/api/account/").json()["sample_balance"] == 50

    # the service replaced its broken pool and keeps rendering
    healthy = client.post("/api/batch/", json=batch_body(2, generator=TEST_GEN, param1=2)).json()
    assert [job["status"] for job in wait_batch(client, healthy["id"])["job_runs"]] == ["succeeded"] * 2
    assert client.get("/api/account/").json()["sample_balance"] == 46
    assert not list((data / "results").glob(".work-*"))  # no half-written results left behind
