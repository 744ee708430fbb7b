"""The viewer in a real headless browser (Debian's chromium via Playwright) over a real uvicorn
server and a real App with completed, failed+compensated, waiting and recurring instances.

Never downloads a browser: it drives /usr/bin/chromium. Without it the tests are skipped, except
under CI=true, where a missing chromium is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replaykit.integrations.viewer import viewer_app
from replaykit.runtime.app import App

from .workflows import ops_app, populate

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _require_browser() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is None and not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        problem = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {problem}")
        pytest.skip(problem)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, App, dict[str, str]]]:
    import uvicorn

    app = ops_app(f"sqlite:///{tmp_path / 'viewer.db'}")
    with app:
        ids = populate(app)
        port = _free_port()
        config = uvicorn.Config(
            viewer_app(app, allow_actions=True), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}", app, ids
        finally:
            server.should_exit = True
            thread.join(timeout=20)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def test_list_filter_and_instance_pages_in_a_browser(
    served: tuple[str, App, dict[str, str]], page: Any, tmp_path: Path
) -> None:
    base, _, ids = served
    page.goto(base + "/")
    rows = page.locator("#instances tbody tr")
    assert rows.count() == 5
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)

    page.select_option("select[name=status]", "failed")
    page.click("button[type=submit]")
    page.wait_for_url("**/?*status=failed*")
    assert page.locator("#instances tbody tr").count() == 1
    page.click(f"text={ids['failed']}")
    page.wait_for_url(f"**/instances/{ids['failed']}")
    timeline = page.locator("#timeline")
    assert "CompensationCompleted" in timeline.inner_text()
    assert "Declined: card declined" in timeline.inner_text()
    assert page.locator("#timeline details").count() >= 1
    page.locator("#timeline details summary").first.click()
    assert "Traceback" in page.locator("#timeline details pre").first.inner_text()
    page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)

    page.goto(f"{base}/instances/{ids['recurring']}")
    assert "run 3 (current)" in page.locator("#runs").inner_text()
    page.click("#runs >> text=run 1")
    assert "Timeline — run 1 (archived)" in page.content()


def test_retry_timeline_and_send_event_action_in_a_browser(
    served: tuple[str, App, dict[str, str]], page: Any, tmp_path: Path
) -> None:
    base, app, ids = served
    page.goto(f"{base}/instances/{ids['retried']}")
    text = page.locator("#timeline").inner_text()
    assert "RetryTimerFired" in text and "ConnectionError" in text
    assert page.locator(".bar.c-retry").count() == 1
    page.screenshot(path=str(tmp_path / "retried.png"), full_page=True)

    page.goto(f"{base}/instances/{ids['waiting']}")
    assert page.locator(".badge.s-waiting").first.is_visible()
    form = page.locator("form[action$='/actions/send-event']")
    form.locator("input[name=type]").fill("ops.paid")
    form.locator("input[name=data]").fill('{"by": "browser"}')
    form.locator("button").click()
    page.wait_for_selector(".flash")
    assert "event ops.paid sent" in page.locator(".flash").inner_text()
    assert app.result(ids["waiting"], timeout=30)["receipt"]["by"] == "browser"
    page.reload()
    assert page.locator(".badge.s-completed").first.is_visible()
    assert "EventReceived" in page.locator("#timeline").inner_text()
    page.screenshot(path=str(tmp_path / "waiting-done.png"), full_page=True)
    print(f"\nscreenshots in {tmp_path}")
