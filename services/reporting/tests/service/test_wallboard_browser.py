"""End to end in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
installed by `make sync` from services/reporting/system-packages.txt) opens the wallboard page,
a contact is queued on Kafka, and its tile shows it without a page reload."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from typing import Any

import pytest

from contactcenter.grpckit import Role, issue_token

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _driver(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            pytest.fail(f"{path} is missing: install the Debian package {package} (make sync)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _text(driver: Any, css: str) -> str | None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(driver.find_element("css selector", css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return None


async def _wait_for(driver: Any, css: str, expected: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while (text := await asyncio.to_thread(_text, driver, css)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{css}: {text!r}, expected {expected!r}")
        await asyncio.sleep(0.1)


async def test_a_queued_contact_appears_on_the_wallboard(service: Any, tenant_id: str) -> None:
    token = issue_token(tenant_id, [Role.SUPERVISOR], "browser-test")
    url = f"http://127.0.0.1:{service.app.http.port}/?token={token}"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        driver = await asyncio.to_thread(_driver, profile)
        try:
            await asyncio.to_thread(driver.get, url)
            await _wait_for(driver, "#status", "live")
            await service.publish(
                tenant_id,
                "interactions.InteractionQueued.v1",
                {"interaction_id": "w-1", "queue_id": "support", "channel": "chat"},
            )
            await _wait_for(driver, "#queue-support .waiting", "1")
            await service.publish(
                tenant_id,
                "routing.AgentStateChanged.v1",
                {"agent_id": "ann", "state": "available", "load": 0, "capacity": 1},
            )
            await _wait_for(driver, "#agent-ann td.available", "available")
            # no reload happened: the page still runs the same document
            assert (
                await asyncio.to_thread(driver.execute_script, "return performance.navigation.type")
                == 0
            )
        finally:
            await asyncio.to_thread(driver.quit)
