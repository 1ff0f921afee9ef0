"""Hostile bodies answer 400 with a bounded, non-repetitive error: lone surrogates, deep nesting, many violations."""

from __future__ import annotations

import json

from svc_helpers import TEST_GEN, Service, batch_body

from opsin.synth.server._batches import MAX_NESTING


def _raw(name_json: str, params_json: str = "{}") -> bytes:
    return (
        f'{{"name": {name_json}, "job_runs": [{{"name": "{TEST_GEN}", "is_preview": false, '
        f'"param_values": {params_json}}}]}}'
    ).encode("ascii")


def test_lone_surrogate_in_batch_name_is_400_with_and_without_key(service: Service) -> None:
    client = service.user(samples=100)
    headers = {"Content-Type": "application/json"}
    for extra in ({}, {"Idempotency-Key": "surrogate-1"}):
        response = client.post("/api/batch/", content=_raw('"\\ud800x"'), headers={**headers, **extra})
        assert response.status_code == 400, response.text
        assert "surrogate" in response.json()["detail"]
    param = client.post("/api/batch/", content=_raw('"ok"', '{"param3": "\\udfff"}'), headers=headers)
    assert param.status_code == 400
    assert "param3" in param.json()["detail"]
    assert client.get("/api/account/").json()["sample_balance"] == 100  # nothing reserved
    assert client.get("/api/batch/").json() == []


def test_deep_nesting_with_idempotency_key_is_400_not_500(service: Service) -> None:
    client = service.user(samples=100)
    deep = "[" * 300 + "]" * 300
    for extra in ({}, {"Idempotency-Key": "deep-1"}):
        response = client.post(
            "/api/batch/",
            content=_raw('"deep"', f'{{"param1": {deep}}}'),
            headers={"Content-Type": "application/json", **extra},
        )
        assert response.status_code == 400, response.text
    # the key was never claimed: the same key with a valid body creates the batch
    ok = client.post("/api/batch/", json=batch_body(1), headers={"Idempotency-Key": "deep-1"})
    assert ok.status_code == 201, ok.text
    # nesting at the limit is a plain type violation, still 400
    shallow = "[" * MAX_NESTING + "]" * MAX_NESTING
    response = client.post("/api/batch/estimate/", content=_raw('""', f'{{"param1": {shallow}}}'),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400
    assert "Type" in response.json()["detail"]


def test_error_answer_says_each_violation_once_and_stays_small(service: Service) -> None:
    client = service.user(samples=100)
    body = batch_body(1000, param1=99, param2=-99.0, param3="NOPE")
    response = client.post("/api/batch/", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert len(answer["errors"]) == 1000
    assert all(answer["errors"])  # every failing job keeps a (possibly shortened) entry, aligned to job_runs
    assert "param1" in answer["errors"][0]
    detail = answer["detail"]
    assert "1000 of 1000 jobs" in detail
    assert detail.count("violated constraint `max`") <= 3  # quoted for the first jobs only, not for all 1000
    assert len(response.content) < min(80_000, len(json.dumps(body).encode()))
    # a single job with one violation per parameter: its entry is capped
    many = {f"x{i}": i for i in range(150)}
    one = client.post("/api/batch/", json=batch_body(1, **many)).json()
    assert len(one["errors"][0]) <= 1000
    assert one["detail"].count("x149") <= 1
