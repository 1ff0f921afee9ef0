"""Idempotent submit: replays return the stored response, charge once, conflict on another body."""

from __future__ import annotations

import threading

from svc_helpers import Service, batch_body


def test_replay_returns_stored_response_without_new_batch(service: Service) -> None:
    client = service.user(samples=20)
    body = batch_body(2, param1=3)
    first = client.post("/api/batch/", json=body, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    second = client.post("/api/batch/", json=body, headers={"Idempotency-Key": "key-1"})
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(client.get("/api/batch/").json()) == 1
    assert client.get("/api/account/").json()["sample_balance"] == 20 - 6  # charged once (net of settlement)
    # same key, another body -> 409; no key -> a new batch each time
    other = client.post("/api/batch/", json=batch_body(1), headers={"Idempotency-Key": "key-1"})
    assert other.status_code == 409
    assert isinstance(other.json()["detail"], str)
    assert client.post("/api/batch/", json=batch_body(1)).status_code == 201
    assert client.post("/api/batch/", json=batch_body(1)).status_code == 201
    assert len(client.get("/api/batch/").json()) == 3


def test_keys_are_scoped_per_user_and_validated(service: Service) -> None:
    alice, bob = service.user(), service.user()
    body = batch_body(1)
    a = alice.post("/api/batch/", json=body, headers={"Idempotency-Key": "shared"})
    b = bob.post("/api/batch/", json=body, headers={"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    for bad in ("", "x" * 256, "tab\there"):
        response = alice.post("/api/batch/", json=body, headers={"Idempotency-Key": bad})
        assert response.status_code == 400, bad


def test_errors_are_replayed_too(service: Service) -> None:
    client = service.user(samples=1)
    body = batch_body(1, param1=5)
    first = client.post("/api/batch/", json=body, headers={"Idempotency-Key": "poor"})
    assert first.status_code == 402
    again = client.post("/api/batch/", json=body, headers={"Idempotency-Key": "poor"})
    assert again.status_code == 402
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


def test_concurrent_replays_create_one_batch_and_charge_once(service: Service) -> None:
    client = service.user(samples=100)
    body = batch_body(3, param1=5)
    results: list[tuple[int, dict, str | None]] = []
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def submit() -> None:
        gate.wait()
        for _ in range(40):  # a 409 "still processing" asks the client to retry
            response = client.post("/api/batch/", json=body, headers={"Idempotency-Key": "together"})
            if response.status_code != 409:
                break
        with lock:
            results.append((response.status_code, response.json(), response.headers.get("idempotent-replayed")))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 8
    assert {status for status, _, _ in results} == {201}
    assert len({payload["id"] for _, payload, _ in results}) == 1
    assert sum(replayed is None for _, _, replayed in results) == 1  # exactly one original response
    assert len(client.get("/api/batch/").json()) == 1
    account = client.get("/api/account/").json()
    assert account["sample_balance"] == 85
    assert account["reserved_samples"] + account["samples_rendered_total"] == 15
