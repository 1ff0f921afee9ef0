"""Schemathesis against the live OpenAPI document at /api/schema/ (loopback only): no request may cause a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from svc_helpers import Service  # noqa: E402

EXAMPLES_PER_OPERATION = 10


@pytest.mark.slow
def test_api_never_answers_5xx(service: Service) -> None:
    assert service.url.startswith("http://127.0.0.1:")  # never fuzz anything but our loopback server
    token = service.user(samples=10**6).token  # type: ignore[attr-defined]
    schema = schemathesis.openapi.from_url(service.url + "api/schema/")
    base_url = service.url.rstrip("/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    seen: dict[str, set[int]] = {}

    def check(operation: Any) -> None:
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
            derandomize=True, database=None,
        )  # fmt: skip
        def exercise(case: Any) -> None:
            for headers in ({"Authorization": f"Token {token}"}, {}):
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                seen.setdefault(label, set()).add(response.status_code)
                assert response.status_code < 500, (label, case.path_parameters, case.body, response.text[:500])

        exercise()

    for operation in operations:
        check(operation)
    # the authenticated calls reached the handlers (not only 401s)
    assert any(code not in (401,) for codes in seen.values() for code in codes)
    assert 401 in seen["GET /api/account/"]
    assert 200 in seen["GET /api/account/"]
