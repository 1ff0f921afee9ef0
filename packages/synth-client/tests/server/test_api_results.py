"""Results: zip layout, signed expiring URLs (403 tampered / 410 expired / 404 purged), seeds and `state` reruns."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
import zipfile
from urllib.parse import parse_qs, urlsplit

import httpx
from svc_helpers import TEST_GEN, Service, batch_body, wait_batch


def _download(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30.0)  # no Authorization header: the signature is the credential


def _zip_members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def test_result_zip_has_single_root_and_job_json(service: Service) -> None:
    client = service.user()
    batch = client.post("/api/batch/", json=batch_body(1, param1=2, param3="CHOICE_2")).json()
    job = batch["job_runs"][0]
    summary = wait_batch(client, batch["id"])
    response = _download(summary["job_runs"][0]["result_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert int(response.headers["content-length"]) == len(response.content)
    assert f'filename="{job["id"]}.zip"' in response.headers["content-disposition"]
    members = _zip_members(response.content)
    assert {name.split("/")[0] for name in members} == {job["id"]}
    assert {name.split("/", 1)[1] for name in members} >= {"job.json", "video_preview.png", "labels.json"}
    job_json = json.loads(members[f"{job['id']}/job.json"])
    assert job_json == {"name": TEST_GEN, "params": job["param_values"]}
    # published atomically under the data dir
    assert (service.settings.results_dir / f"{job['id']}.zip").read_bytes() == response.content


def test_signed_urls_tampered_expired_purged(service: Service) -> None:
    client = service.user()
    batch = client.post("/api/batch/", json=batch_body(2)).json()
    summary = wait_batch(client, batch["id"])
    url = summary["job_runs"][0]["result_url"]
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    job_id = summary["job_runs"][0]["id"]
    assert parts.path == f"/api/results/{job_id}.zip"
    # independent HMAC: sig = HMAC-SHA256(secret, "<job_id>:<expires>")
    secret = service.settings.secret_key.encode()
    expected = hmac.new(secret, f"{job_id}:{query['expires']}".encode(), hashlib.sha256).hexdigest()
    assert query["sig"] == expected
    assert 23 * 3600 < int(query["expires"]) - time.time() <= 24 * 3600

    flipped = query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")
    assert _download(f"{base}?expires={query['expires']}&sig={flipped}").status_code == 403
    longer = int(query["expires"]) + 3600
    assert _download(f"{base}?expires={longer}&sig={query['sig']}").status_code == 403
    other_job = summary["job_runs"][1]["id"]
    assert _download(url.replace(job_id, other_job)).status_code == 403
    assert _download(base).status_code == 403

    past = int(time.time()) - 10
    past_sig = hmac.new(secret, f"{job_id}:{past}".encode(), hashlib.sha256).hexdigest()
    expired = _download(f"{base}?expires={past}&sig={past_sig}")
    assert expired.status_code == 410
    assert isinstance(expired.json()["detail"], str)

    # every summary carries a fresh URL; a purged result answers 404
    (service.settings.results_dir / f"{job_id}.zip").unlink()
    assert _download(url).status_code == 404


def test_same_state_gives_identical_bytes_and_seed_chains(service: Service) -> None:
    client = service.user()
    first = client.post("/api/batch/", json=batch_body(1, is_preview=True, param2=1.0)).json()
    wait_batch(client, first["id"])
    root = first["job_runs"][0]["id"]
    rerun = client.post("/api/batch/", json=batch_body(2, is_preview=True, param2=1.0, state=root)).json()
    assert [job["param_values"]["state"] for job in rerun["job_runs"]] == [root, root]
    chained = client.post(
        "/api/batch/", json=batch_body(1, is_preview=True, param2=1.0, state=rerun["job_runs"][0]["id"])
    ).json()
    unrelated = client.post("/api/batch/", json=batch_body(1, is_preview=True, param2=1.0)).json()
    pngs = {}
    for batch in (first, rerun, chained, unrelated):
        for entry in wait_batch(client, batch["id"])["job_runs"]:
            members = _zip_members(_download(entry["result_url"]).content)
            pngs[entry["id"]] = members[f"{entry['id']}/video_preview.png"]
    root_png = pngs[root]
    assert pngs[rerun["job_runs"][0]["id"]] == root_png
    assert pngs[rerun["job_runs"][1]["id"]] == root_png
    assert pngs[chained["job_runs"][0]["id"]] == root_png  # X seeded from Y seeded from root -> root's seed
    assert pngs[unrelated["job_runs"][0]["id"]] != root_png  # its own seed


def test_seed_is_sha256_of_the_seed_source(service: Service) -> None:
    from sqlalchemy import select

    from opsin.synth.server.models import Job

    client = service.user()
    first = client.post("/api/batch/", json=batch_body(1)).json()
    root = first["job_runs"][0]["id"]
    rerun = client.post("/api/batch/", json=batch_body(1, state=root)).json()
    with service.db.read() as session:
        rows = {job.id: job for job in session.scalars(select(Job).where(Job.batch_id.in_([first["id"], rerun["id"]])))}
    expected = int.from_bytes(hashlib.sha256(root.encode()).digest()[:8], "big")
    assert int(rows[root].seed) == expected
    assert int(rows[rerun["job_runs"][0]["id"]].seed) == expected
    assert rows[rerun["job_runs"][0]["id"]].seed_source_job == root
