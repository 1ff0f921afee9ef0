"""Portal sessions end on the server: logout, a new token and deactivation all stop a saved cookie at once."""

from __future__ import annotations

import httpx
from svc_helpers import Service
from test_portal import _csrf, _login

from opsin.synth.server.users import rotate_token, set_active


def _saved_copy(service: Service, browser: httpx.Client) -> httpx.Client:
    return httpx.Client(base_url=service.url, cookies={"opsin_session": browser.cookies["opsin_session"]})


def test_logout_ends_the_session_for_every_copy_of_the_cookie(service: Service) -> None:
    owner = service.user()
    browser = _login(service, owner.username, owner.token)  # type: ignore[attr-defined]
    saved = _saved_copy(service, browser)
    page = browser.get("/portal/account/")
    assert saved.get("/portal/account/").status_code == 200
    assert browser.post("/portal/logout/", data={"csrf_token": _csrf(page.text)}).status_code == 303
    assert saved.get("/portal/account/").status_code == 303  # the copy saved before logout is dead too
    other = _login(service, owner.username, owner.token)  # type: ignore[attr-defined]
    assert other.get("/portal/account/").status_code == 200  # logging in again works
    for client in (browser, saved, other):
        client.close()


def test_token_rotation_and_deactivation_end_sessions(service: Service) -> None:
    first, second = service.user(), service.user()
    rotated = _login(service, first.username, first.token)  # type: ignore[attr-defined]
    deactivated = _login(service, second.username, second.token)  # type: ignore[attr-defined]
    new_token = rotate_token(service.db, first.username)  # type: ignore[attr-defined]
    assert rotated.get("/portal/account/").status_code == 303
    again = _login(service, first.username, new_token)  # type: ignore[attr-defined]
    assert again.get("/portal/account/").status_code == 200
    set_active(service.db, second.username, False)  # type: ignore[attr-defined]
    assert deactivated.get("/portal/account/").status_code == 303
    set_active(service.db, second.username, True)  # type: ignore[attr-defined]
    assert deactivated.get("/portal/account/").status_code == 303  # reactivation does not revive old sessions
    for client in (rotated, again, deactivated):
        client.close()
