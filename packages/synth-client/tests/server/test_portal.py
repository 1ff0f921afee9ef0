"""The server-rendered user portal: login with CSRF, cookie flags, pages, isolation and escaping."""

from __future__ import annotations

import re
import uuid

import httpx
from svc_helpers import TEST_GEN, Service, batch_body, wait_batch


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def _login(service: Service, username: str, token: str) -> httpx.Client:
    browser = httpx.Client(base_url=service.url, timeout=30.0)
    form = browser.get("/portal/login/")
    assert form.status_code == 200
    assert "<form" in form.text
    response = browser.post(
        "/portal/login/",
        data={"username": username, "token": token, "csrf_token": _csrf(form.text), "next": "/portal/account/"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/account/"
    cookie = response.headers["set-cookie"]
    assert "opsin_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("Lax", "lax")
    return browser


def test_login_requires_csrf_and_valid_credentials(service: Service) -> None:
    api = service.user()
    browser = httpx.Client(base_url=service.url)
    assert browser.get("/portal/batches/").status_code == 303  # not logged in -> login page
    form = browser.get("/portal/login/")
    token = api.token  # type: ignore[attr-defined]
    no_csrf = browser.post("/portal/login/", data={"username": api.username, "token": token})  # type: ignore[attr-defined]
    assert no_csrf.status_code == 403
    assert "opsin_session" not in no_csrf.headers.get("set-cookie", "")
    wrong = browser.post(
        "/portal/login/",
        data={"username": api.username, "token": "0" * 40, "csrf_token": _csrf(form.text)},  # type: ignore[attr-defined]
    )
    assert wrong.status_code == 400
    assert "opsin_session" not in wrong.headers.get("set-cookie", "")
    other_name = browser.post("/portal/login/", data={"username": "someone-else", "token": token,
                                                      "csrf_token": _csrf(form.text)})  # fmt: skip
    assert other_name.status_code == 400
    browser.close()


def test_pages_show_the_users_data_only(service: Service) -> None:
    owner, stranger = service.user(samples=77), service.user()
    batch = owner.post("/api/batch/", json={**batch_body(2, param1=2), "name": "<b>mine</b>"}).json()
    wait_batch(owner, batch["id"])
    foreign = stranger.post("/api/batch/", json=batch_body(1)).json()
    browser = _login(service, owner.username, owner.token)  # type: ignore[attr-defined]
    account = browser.get("/portal/account/")
    assert account.status_code == 200
    assert owner.username in account.text
    assert ">73<" in account.text
    listing = browser.get("/portal/batches/")
    assert batch["id"] in listing.text
    assert foreign["id"] not in listing.text
    assert "&lt;b&gt;mine&lt;/b&gt;" in listing.text
    assert "<b>mine</b>" not in listing.text
    assert "2 / 2" in listing.text
    page = browser.get(f"/portal/batches/{batch['id']}/")
    assert page.status_code == 200
    assert page.text.count("Done") == 2
    links = re.findall(r'href="([^"]+/api/results/[^"]+)"', page.text)
    assert len(links) == 2
    assert httpx.get(links[0].replace("&amp;", "&")).status_code == 200
    assert browser.get(f"/portal/batches/{foreign['id']}/").status_code == 404
    assert browser.get(f"/portal/batches/{uuid.uuid4()}/").status_code == 404
    generator = browser.get(f"/portal/generators/{TEST_GEN}/")
    assert generator.status_code == 200
    assert "param3" in generator.text
    assert "CHOICE_2" in generator.text
    assert browser.get("/portal/generators/nope/").status_code == 404
    legacy = browser.get(f"/admin/api/batch/{batch['id']}/")
    assert legacy.status_code == 302
    assert legacy.headers["location"] == f"/portal/batches/{batch['id']}/"
    # logout needs the session's CSRF token
    assert browser.post("/portal/logout/", data={"csrf_token": "0" * 64}).status_code == 403
    out = browser.post("/portal/logout/", data={"csrf_token": _csrf(listing.text)})
    assert out.status_code == 303
    assert browser.get("/portal/batches/").status_code == 303
    browser.close()


def test_forged_session_cookie_is_rejected(service: Service) -> None:
    owner = service.user()
    browser = _login(service, owner.username, owner.token)  # type: ignore[attr-defined]
    value = browser.cookies["opsin_session"]
    session_id, sig = value.split(".")
    # change the id's last character to one it is not, so the forgery always differs from the real cookie
    other = "1" if session_id[-1] == "0" else "0"
    other_sig = "1" if sig[0] == "0" else "0"
    fakes = (f"{session_id[:-1]}{other}.{sig}", f"{session_id}.{other_sig * len(sig)}", "x.y", session_id)
    for fake in fakes:
        assert fake != value
        forged = httpx.Client(base_url=service.url, cookies={"opsin_session": fake})
        assert forged.get("/portal/account/").status_code == 303
        forged.close()
    browser.close()
