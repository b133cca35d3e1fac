"""Fixtures for browser tests (a pytest plugin, loaded once by tests/conftest.py so that browser
and fault tests share one Chromium): the app served on a free port, and headless Debian Chromium.

``live_server``  the test app (the ``app`` fixture: same throwaway database, same config, but with
                 CSRF protection switched ON, as in production) served by werkzeug in a background
                 thread on a free 127.0.0.1 port. Yields an object with ``url`` ("http://127.0.0.1:
                 PORT") and ``app``. Build test data with the ``factory`` fixture as usual; it is
                 committed, so the server thread sees it.
``browser``      one headless Chromium per test run (``/usr/bin/chromium``; never downloaded).
``browser_context`` a fresh context per test: viewport 1366×768, no shared cookies/storage.
``browser_page`` a page of that context, with a short default timeout; the context is available
                 as ``browser_page.context`` (e.g. ``context.set_offline(True)``).
``artifacts``    the folder ``test-artifacts/`` (gitignored) for screenshots.

Every test using these fixtures must be marked ``@pytest.mark.browser``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 1366, "height": 768}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class LiveServer:
    url: str
    app: Flask


def _closing_responses(app: WSGIApplication) -> WSGIApplication:
    """The app, with each response closed however its sending ends (PEP 3333 asks the server to).

    Werkzeug's development server (3.1) skips ``close()`` when the browser resets the connection
    (Chromium aborts audio range requests when it seeks): reading the rest of the request in
    ``execute``'s ``finally`` raises before the close. The file of that response was then left
    to the collector, a ResourceWarning in whichever test ran it. The generator closes the response
    in its own ``finally``: when the server closes it, or else when it is collected.
    """

    def closing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return _closed_after_sending(app(environ, start_response))

    return closing


def _closed_after_sending(response: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from response
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    app.config["WTF_CSRF_ENABLED"] = True  # read per request by Flask-WTF
    server = make_server("127.0.0.1", 0, _closing_responses(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_context(browser):
    context = browser.new_context(viewport=VIEWPORT)
    yield context
    context.close()


@pytest.fixture
def browser_page(browser_context):
    page = browser_context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
