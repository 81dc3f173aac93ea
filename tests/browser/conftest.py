"""Headless Chromium (Debian's) for the pages that matter, driven by Playwright."""

import os
import shutil

import pytest
from django.db import connections

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def page(tmp_path):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe, so allow them (the live server runs in its own thread).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(locale="es-CL", viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15000)
        # The pages run under their Content-Security-Policy: anything it blocks fails the test.
        blocked: list[str] = []
        page.on(
            "console",
            lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )
        yield page
        assert not blocked, blocked
        page.screenshot(
            path=os.environ.get("BROWSER_SHOT", str(tmp_path / "last.png")), full_page=True
        )
        browser.close()
        # While Playwright's loop runs, the test's ORM calls got their own connection (asgiref
        # keys connections by context); close it here, in that context, so teardown can drop
        # the test database.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
