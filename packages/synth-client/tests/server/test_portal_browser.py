"""The portal in a real headless Chromium: log in, open every page, save screenshots, check what they show.

Screenshots go to ``$OPSIN_SCREENSHOT_DIR`` when set (CI keeps them), else the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from svc_helpers import TEST_GEN, Service, batch_body, wait_batch

pytest.importorskip("websockets", reason="the browser test drives Chromium through the websockets package")

from _browser import Browser, find_chromium

CHROMIUM = find_chromium()
MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_portal_pages_in_a_browser(service: Service, tmp_path: Path) -> None:
    shots = Path(os.environ.get("OPSIN_SCREENSHOT_DIR") or tmp_path / "screenshots")
    client = service.user(samples=500)
    shapes_params = {"num_images": 2, "image_width": 64, "image_height": 64, "num_objects": 3}
    shapes = client.post("/api/batch/", json={**batch_body(2, generator="shapes-v0.1.0", **shapes_params),
                                              "name": "browser shapes"}).json()  # fmt: skip
    tests = client.post("/api/batch/", json={**batch_body(1, generator=TEST_GEN, param1=2), "name": "browser test"})
    for batch_id in (shapes["id"], tests.json()["id"]):
        wait_batch(client, batch_id, timeout=120)
    base = service.url.rstrip("/")
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as browser:
        login = browser.open(f"{base}/portal/login/")
        assert "opsin-synth admin create-user" in login  # where a token comes from
        browser.screenshot(shots / "login.png")
        user, token = json.dumps(client.username), json.dumps(client.token)  # type: ignore[attr-defined]
        browser.js(
            f"document.querySelector('input[name=username]').value = {user};"
            f"document.querySelector('input[name=token]').value = {token};"
            "document.querySelector('form.login').submit(); true"
        )
        browser.wait_for("location.pathname === '/portal/batches/' && document.readyState === 'complete'")
        listing = str(browser.js("document.body.innerText"))
        browser.screenshot(shots / "batches.png")
        assert "browser shapes" in listing
        assert "browser test" in listing
        row = next(line for line in listing.splitlines() if "browser shapes" in line)
        assert "full" in row  # an image-set batch, not a "video"
        assert "2 / 2" in row
        assert not MICROSECONDS.search(listing)
        assert browser.js("getComputedStyle(document.querySelector('header')).display") == "flex"  # stylesheet

        page = browser.open(f"{base}/portal/batches/{shapes['id']}/")
        browser.screenshot(shots / "batch.png")
        assert page.count("Done") == 2
        assert browser.js("document.querySelectorAll('a[href*=\"/api/results/\"]').length") == 2

        generator = browser.open(f"{base}/portal/generators/visionfit-v0.4.0/")
        browser.screenshot(shots / "generator.png")
        assert "exercise" in generator
        assert "UPPERCUT-LEFT" in generator
        narrowest = browser.js("Math.min(...[...document.querySelectorAll('td.desc')].map(td => td.offsetWidth))")
        assert narrowest >= 250  # descriptions get a readable column

        listing = browser.open(f"{base}/portal/generators/")
        assert "shapes-v0.1.0" in listing
        jobs = browser.open(f"{base}/portal/jobs/")
        assert shapes["job_runs"][0]["id"] in jobs

        account = browser.open(f"{base}/portal/account/")
        browser.screenshot(shots / "account.png")
        assert client.username in account  # type: ignore[attr-defined]
        assert re.search(r"Disk use of your results\s+\d+(\.\d)? (bytes|KiB|MiB)", account)

        missing = browser.open(f"{base}/portal/nothing-here/")
        assert "Not found" in missing
        assert browser.js("document.contentType") == "text/html"

        browser.open(f"{base}/api/schema/swagger-ui/")
        browser.wait_for("document.querySelectorAll('.opblock').length > 10", timeout=60)  # rendered by local JS
        browser.screenshot(shots / "swagger.png")
        assert "/api/batch/" in str(browser.js("document.body.innerText"))
        sources = browser.js(
            "[...document.scripts].map(s => s.src).concat([...document.querySelectorAll('link')].map(l => l.href))"
        )
        assert all(src == "" or src.startswith(base) for src in sources), sources  # nothing from a CDN
    assert {path.name for path in shots.glob("*.png")} >= {"batches.png", "batch.png", "generator.png", "swagger.png"}
