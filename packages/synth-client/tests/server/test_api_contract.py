"""REST contract: status codes and JSON shapes of every endpoint, 400/401/403/413 handling, schema, health."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
import yaml
from sqlalchemy import update
from svc_helpers import TEST_GEN, Service, batch_body, wait_batch

from opsin.synth import __version__
from opsin.synth.server.models import User

JOB_KEYS = {
    "id", "name", "batch_id", "is_preview", "param_values", "in_progress", "result_url", "status", "created",
    "completed", "estimated_samples", "actual_samples",
}  # fmt: skip


def _uuid4(value: str) -> None:
    assert str(uuid.UUID(value)) == value
    assert uuid.UUID(value).version == 4


def _aware(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


def test_health_needs_no_auth(service: Service) -> None:
    response = httpx.get(service.url + "api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "api/jobs/"),
        ("GET", f"api/jobs/{TEST_GEN}/"),
        ("POST", "api/batch/"),
        ("POST", "api/batch/estimate/"),
        ("GET", "api/batch/"),
        ("GET", f"api/batch/{uuid.uuid4()}/"),
        ("GET", f"api/batch/{uuid.uuid4()}/summary/"),
        ("POST", f"api/batch/{uuid.uuid4()}/cancel/"),
        ("GET", "api/job_runs/"),
        ("GET", "api/job_runs/counts/"),
        ("GET", "api/job_previews/"),
        ("GET", "api/account/"),
    ],
)
def test_missing_or_wrong_token_is_401(service: Service, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Token " + "0" * 40}, {"Authorization": "Bearer abc"}):
        response = httpx.request(method, service.url + path, headers=headers, json=batch_body())
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Token"
        assert isinstance(response.json()["detail"], str)


def test_deactivated_user_is_403(service: Service) -> None:
    client = service.user()
    with service.db.write() as session:
        session.execute(update(User).where(User.username == client.username).values(is_active=False))  # type: ignore[attr-defined]
    response = client.get("/api/account/")
    assert response.status_code == 403
    assert isinstance(response.json()["detail"], str)


def test_generators_list_and_description(service: Service) -> None:
    client = service.user()
    listing = client.get("/api/jobs/")
    assert listing.status_code == 200
    entries = {entry["name"]: entry for entry in listing.json()}
    assert set(entries[TEST_GEN]) == {"name", "version", "description", "options"}
    assert entries[TEST_GEN]["options"] == {"preview": True}
    described = client.get(f"/api/jobs/{TEST_GEN}/").json()
    assert described["name"] == TEST_GEN
    assert described["version"] == "0.1.0"
    params = {p["name"]: p for p in described["params"]}
    assert params["param1"] == {
        "name": "param1", "type": "int", "default_value": 1, "options": {"min": 1, "max": 5},
        "description": params["param1"]["description"],
    }  # fmt: skip
    assert params["param3"]["options"] == {"choices": ["CHOICE_1", "CHOICE_2"]}
    assert params["state"]["type"] == "uuid"
    assert params["state"]["options"] is None
    missing = client.get("/api/jobs/no-such-generator/")
    assert missing.status_code == 404
    assert "no-such-generator" in missing.json()["detail"]


def test_submit_returns_201_detail_in_order(service: Service) -> None:
    client = service.user(samples=100)
    body = {
        "name": "ordered",
        "job_runs": [{"name": TEST_GEN, "is_preview": False, "param_values": {"param1": n}} for n in (3, 1, 2)],
    }
    response = client.post("/api/batch/", json=body)
    assert response.status_code == 201, response.text
    detail = response.json()
    assert {"id", "name", "created", "job_runs"} <= set(detail)
    _uuid4(detail["id"])
    _aware(detail["created"])
    assert detail["name"] == "ordered"
    assert [job["param_values"]["param1"] for job in detail["job_runs"]] == [3, 1, 2]
    for job in detail["job_runs"]:
        assert set(job) >= JOB_KEYS
        _uuid4(job["id"])
        assert job["name"] == TEST_GEN
        assert job["batch_id"] == detail["id"]
        assert job["is_preview"] is False
        assert job["param_values"] == {"param1": job["param_values"]["param1"], "param2": 2.5,
                                       "param3": "CHOICE_1", "state": None}  # fmt: skip
        assert job["estimated_samples"] == job["param_values"]["param1"]
    summary = wait_batch(client, detail["id"])
    assert set(summary) == {"id", "job_runs"}
    for entry in summary["job_runs"]:
        assert set(entry) == {"id", "name", "in_progress", "result_url", "status"}
        assert entry["status"] == "succeeded"
        assert entry["result_url"].startswith(service.url.rstrip("/"))
    again = client.get(f"/api/batch/{detail['id']}/").json()
    for job in again["job_runs"]:
        assert job["actual_samples"] == job["estimated_samples"]
        assert _aware(job["completed"]) >= _aware(job["created"])
    # exact estimates: the net balance change equals the frames rendered
    account = client.get("/api/account/").json()
    assert account.pop("result_bytes") > 0  # disk use of the three result zips
    assert account == {
        "username": client.username,  # type: ignore[attr-defined]
        "sample_balance": 94,
        "reserved_samples": 0,
        "samples_rendered_total": 6,
    }


def test_estimate_endpoint(service: Service) -> None:
    client = service.user(samples=0)  # the estimate ignores the balance
    body = {"name": "", "job_runs": [{"name": TEST_GEN, "is_preview": False, "param_values": {"param1": n}}
                                     for n in (1, 5, 2)]}  # fmt: skip
    response = client.post("/api/batch/estimate/", json=body)
    assert response.status_code == 200
    assert response.json() == [1, 5, 2]
    previews = client.post("/api/batch/estimate/", json=batch_body(3, is_preview=True, param1=5))
    assert previews.json() == [1, 1, 1]
    assert client.get("/api/account/").json()["sample_balance"] == 0


def test_insufficient_samples_is_402_and_creates_nothing(service: Service) -> None:
    client = service.user(samples=4)
    response = client.post("/api/batch/", json=batch_body(2, param1=3))
    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "insufficient_samples"
    assert body["required"] == 6
    assert body["available"] == 4
    assert "6" in body["detail"]
    assert "4" in body["detail"]
    assert "admin" in body["detail"]
    assert client.get("/api/batch/").json() == []
    assert client.get("/api/account/").json()["sample_balance"] == 4


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"param1": 9}, "param1"),
        ({"param1": "many"}, "param1"),
        ({"param1": 2.5}, "param1"),
        ({"param2": True}, "param2"),
        ({"param3": "CHOICE_9"}, "param3"),
        ({"param3": 1}, "param3"),
        ({"bogus": 1}, "bogus"),
        ({"state": str(uuid.uuid4())}, "state"),
        ({"state": "not-a-uuid"}, "state"),
        ({"state": 12}, "state"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(service: Service, params: dict, named: str) -> None:
    client = service.user()
    body = {"name": "x", "job_runs": [{"name": TEST_GEN, "param_values": {}}, {"name": TEST_GEN,
                                                                                "param_values": params}]}  # fmt: skip
    for path in ("/api/batch/", "/api/batch/estimate/"):
        response = client.post(path, json=body)
        assert response.status_code == 400, response.text
        payload = response.json()
        assert isinstance(payload["detail"], str)
        assert f"`{named}`" in payload["detail"]
        assert "job param index 1" in payload["detail"]
        assert payload["errors"][0] is None
        assert f"`{named}`" in payload["errors"][1]
    assert client.get("/api/batch/").json() == []


def test_body_shape_errors_are_400_with_string_detail(service: Service) -> None:
    client = service.user()
    cases = [
        (b"{not json", "Malformed JSON"),
        (b'{"name": "x"}', "job_runs"),
        (b'{"name": "x", "job_runs": "nope"}', "job_runs"),
        (b'{"job_runs": [{"param_values": {}}]}', "name"),
        (b'{"job_runs": [{"name": 5}]}', "name"),
        (b'{"job_runs": []}', "job_runs"),
        (b"[1, 2]", "body"),
    ]
    for raw, named in cases:
        response = client.post("/api/batch/", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (raw, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str)
        assert named in detail, (raw, detail)


def test_mixed_generators_or_job_types_are_400(service: Service) -> None:
    client = service.user()
    mixed = {"job_runs": [{"name": TEST_GEN, "is_preview": True}, {"name": TEST_GEN, "is_preview": False}]}
    assert client.post("/api/batch/", json=mixed).status_code == 400
    unknown = {"job_runs": [{"name": "nope-v1", "param_values": {}}]}
    response = client.post("/api/batch/", json=unknown)
    assert response.status_code == 400
    assert "nope-v1" in response.json()["detail"]


def test_limits(service: Service) -> None:
    client = service.user(samples=10**6)
    too_big = b'{"name": "' + b"x" * (4 * 1024 * 1024) + b'", "job_runs": []}'
    response = client.post("/api/batch/", content=too_big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert isinstance(response.json()["detail"], str)
    many = client.post("/api/batch/estimate/", json=batch_body(1001))
    assert many.status_code == 400
    assert "1000" in many.json()["detail"]
    long_name = client.post("/api/batch/", json={**batch_body(), "name": "n" * 257})
    assert long_name.status_code == 400
    assert "`name`" in long_name.json()["detail"]
    long_string = client.post("/api/batch/", json=batch_body(param3="C" * 1025))
    assert long_string.status_code == 400
    assert "`param3`" in long_string.json()["detail"]
    many_params = client.post("/api/batch/", json=batch_body(**{f"p{i}": i for i in range(201)}))
    assert many_params.status_code == 400
    assert "201" in many_params.json()["detail"]


def test_frame_limit_names_the_job(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(max_frames_per_job=3, start_dispatcher=False)
    client = svc.user()
    body = {"job_runs": [{"name": TEST_GEN, "param_values": {"param1": n}} for n in (1, 4)]}
    for path in ("/api/batch/estimate/", "/api/batch/"):
        response = client.post(path, json=body)
        assert response.status_code == 400
        assert "job param index 1" in response.json()["detail"]
        assert "3" in response.json()["detail"]


def test_batch_list_window_and_shape(service: Service) -> None:
    client = service.user()
    first = client.post("/api/batch/", json={**batch_body(2), "name": "first"}).json()
    second = client.post("/api/batch/", json={**batch_body(1, is_preview=True), "name": "second"}).json()
    listing = client.get("/api/batch/")
    assert listing.status_code == 200
    items = listing.json()
    assert [item["id"] for item in items] == [first["id"], second["id"]]  # oldest -> newest
    assert set(items[0]) == {"id", "name", "created", "generator", "is_preview", "num_jobs", "num_in_progress"}
    assert items[0]["num_jobs"] == 2
    assert items[1]["is_preview"] is True
    assert items[1]["generator"] == TEST_GEN
    assert 0 <= items[0]["num_in_progress"] <= 2
    created = _aware(second["created"])
    after = client.get("/api/batch/", params={"start_time": created.isoformat()}).json()
    assert [item["id"] for item in after] == [second["id"]]
    naive_before = (_aware(first["created"]) - dt.timedelta(microseconds=1)).astimezone(dt.UTC).replace(tzinfo=None)
    until = client.get("/api/batch/", params={"end_time": naive_before.isoformat()}).json()
    assert until == []
    bad = client.get("/api/batch/", params={"start_time": "yesterday"})
    assert bad.status_code == 400
    assert "start_time" in bad.json()["detail"]


def test_job_runs_and_previews_split(service: Service) -> None:
    client = service.user()
    videos = client.post("/api/batch/", json=batch_body(2)).json()
    previews = client.post("/api/batch/", json=batch_body(1, is_preview=True)).json()
    video_id, preview_id = videos["job_runs"][0]["id"], previews["job_runs"][0]["id"]
    runs = client.get("/api/job_runs/").json()
    assert {job["id"] for job in runs} == {job["id"] for job in videos["job_runs"]}
    assert all(set(job) >= JOB_KEYS for job in runs)
    assert [j["id"] for j in client.get("/api/job_previews/").json()] == [preview_id]
    assert client.get("/api/job_runs/", params={"batch_id": previews["id"]}).json() == []
    assert len(client.get("/api/job_runs/", params={"batch_id": videos["id"]}).json()) == 2
    assert client.get(f"/api/job_runs/{video_id}/").json()["id"] == video_id
    assert client.get(f"/api/job_previews/{preview_id}/").json()["is_preview"] is True
    assert client.get(f"/api/job_runs/{preview_id}/").status_code == 404
    assert client.get(f"/api/job_previews/{video_id}/").status_code == 404
    assert client.get("/api/job_runs/not-a-uuid/").status_code in (400, 404)


def test_counts_sum_actual_samples_in_window(service: Service) -> None:
    client = service.user(samples=100)
    before = dt.datetime.now(dt.UTC)
    videos = client.post("/api/batch/", json=batch_body(2, param1=4)).json()
    previews = client.post("/api/batch/", json=batch_body(3, is_preview=True, param1=4)).json()
    wait_batch(client, videos["id"])
    wait_batch(client, previews["id"])
    counts = client.get("/api/job_runs/counts/")
    assert counts.status_code == 200
    body = counts.json()
    assert body["start_time"] is None
    assert body["end_time"] is None
    assert body["counts_by_generator"] == [
        {"generator": TEST_GEN, "preview_samples_rendered": 3, "non_preview_samples_rendered": 8}
    ]
    window = client.get(
        "/api/job_runs/counts/", params={"start_time": (before - dt.timedelta(days=2)).isoformat(),
                                         "end_time": (before - dt.timedelta(days=1)).isoformat()}
    ).json()  # fmt: skip
    assert window["counts_by_generator"] == []
    assert _aware(window["start_time"]) == before - dt.timedelta(days=2)
    assert client.get("/api/account/").json()["samples_rendered_total"] == 11


def test_slashless_paths_redirect(service: Service) -> None:
    client = service.user()
    response = client.get("/api/account", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"].endswith("/api/account/")


def test_openapi_schema_json_and_yaml(service: Service) -> None:
    response = httpx.get(service.url + "api/schema/")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    for path in ("/api/batch/", "/api/batch/{batch_id}/summary/", "/api/job_runs/counts/", "/api/account/",
                 "/api/batch/{batch_id}/cancel/", "/api/results/{filename}"):  # fmt: skip
        assert path in document["paths"], path
    as_yaml = httpx.get(service.url + "api/schema/", params={"format": "yaml"})
    assert as_yaml.status_code == 200
    assert yaml.safe_load(as_yaml.text) == document
    by_accept = httpx.get(service.url + "api/schema/", headers={"Accept": "application/vnd.oai.openapi"})
    assert yaml.safe_load(by_accept.text) == document
    ui = httpx.get(service.url + "api/schema/swagger-ui/")
    assert ui.status_code == 200
    assert "/api/schema/" in ui.text
