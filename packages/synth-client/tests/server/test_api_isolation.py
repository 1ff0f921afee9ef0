"""Strict per-user isolation: another user's ids answer exactly like ids that do not exist."""

from __future__ import annotations

import uuid

from svc_helpers import Service, batch_body, wait_batch


def test_foreign_ids_read_like_missing_ids(service: Service) -> None:
    owner, stranger = service.user(), service.user()
    video = owner.post("/api/batch/", json=batch_body(1, param1=2)).json()
    preview = owner.post("/api/batch/", json=batch_body(1, is_preview=True)).json()
    wait_batch(owner, video["id"])
    wait_batch(owner, preview["id"])
    video_job, preview_job = video["job_runs"][0]["id"], preview["job_runs"][0]["id"]
    missing = str(uuid.uuid4())
    probes = [
        ("GET", "/api/batch/{}/", video["id"]),
        ("GET", "/api/batch/{}/summary/", video["id"]),
        ("POST", "/api/batch/{}/cancel/", video["id"]),
        ("GET", "/api/job_runs/{}/", video_job),
        ("GET", "/api/job_previews/{}/", preview_job),
    ]
    for method, template, foreign_id in probes:
        foreign = stranger.request(method, template.format(foreign_id))
        absent = stranger.request(method, template.format(missing))
        assert foreign.status_code == absent.status_code == 404, template
        assert foreign.content == absent.content, template
        assert owner.request(method, template.format(foreign_id)).status_code == 200
    # listings never show foreign rows, even when filtered by a foreign batch id
    assert stranger.get("/api/batch/").json() == []
    assert stranger.get("/api/job_runs/").json() == []
    assert stranger.get("/api/job_runs/", params={"batch_id": video["id"]}).json() == []
    assert stranger.get("/api/job_previews/").json() == []
    assert stranger.get("/api/job_runs/counts/").json()["counts_by_generator"] == []
    # `state` naming a foreign job is refused with the same text as a non-existent id
    foreign_state = stranger.post("/api/batch/", json=batch_body(1, state=preview_job))
    absent_state = stranger.post("/api/batch/", json=batch_body(1, state=missing))
    assert foreign_state.status_code == absent_state.status_code == 400
    assert foreign_state.json()["detail"].replace(preview_job, "X") == absent_state.json()["detail"].replace(
        missing, "X"
    )
    # the owner's job is unaffected by the stranger's attempts
    assert owner.get(f"/api/batch/{video['id']}/summary/").json()["job_runs"][0]["status"] == "succeeded"
