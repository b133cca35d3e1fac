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
``new_page``     ``new_page(**context_options)``: a page in a context of its own (another user
                 logged in beside the first), closed after the test like ``browser_context``.
``artifacts``    the folder ``test-artifacts/`` (gitignored) for screenshots.

Contexts close before the live server stops, and the server waits for the requests it is still
answering (a save the page sends as it closes): no request of a test reaches the next one's data.

Every test using these fixtures must be marked ``@pytest.mark.browser``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import ThreadedWSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from playwright.sync_api import BrowserContext, Page

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


# Longer than any request of the tests takes; a request still running then is a test's error.
REQUEST_WAIT_S = 30


class _WaitingServer(ThreadedWSGIServer):
    """Werkzeug's threaded server, which knows the requests it is answering.

    Its request threads are daemons, which ``server_close`` does not join: a request still
    running when a test ended (the save a page sends as it closes) went on into the next test,
    after its data was emptied and its connection pool replaced (a 401, and a connection left to
    the collector). The fixture waits for these threads before the app is torn down.
    """

    def __init__(self, app: WSGIApplication) -> None:
        super().__init__("127.0.0.1", 0, app)
        self.answering: set[threading.Thread] = set()
        self._answering_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:
        """As ``ThreadingMixIn`` does, but the thread is known before it starts."""
        thread = threading.Thread(target=self._answer, args=(request, client_address), daemon=True)
        with self._answering_lock:
            self.answering.add(thread)
        thread.start()

    def _answer(self, request: socket.socket, client_address: object) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._answering_lock:
                self.answering.discard(threading.current_thread())

    def wait_for_requests(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._answering_lock:
            threads = list(self.answering)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            pytest.fail(f"a request was still being answered {timeout_s} s after its test")


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    app.config["WTF_CSRF_ENABLED"] = True  # read per request by Flask-WTF
    server = _WaitingServer(_closing_responses(app))
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        server.wait_for_requests(REQUEST_WAIT_S)


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


def _after_the_live_server(request: pytest.FixtureRequest) -> None:
    """Set up the test's live server first, if it has one, so that it stops after the contexts
    close (a test of another server, e.g. the fault tests' gunicorn, gets none)."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("live_server")


@pytest.fixture
def browser_context(browser, request: pytest.FixtureRequest):
    _after_the_live_server(request)
    context = browser.new_context(viewport=VIEWPORT)
    yield context
    context.close()


@pytest.fixture
def new_page(browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """``new_page(**context_options)``: a page in a new context (viewport 1366×768 unless given)."""
    _after_the_live_server(request)
    contexts: list[BrowserContext] = []

    def open_page(**context_options: object) -> Page:
        context = browser.new_context(**{"viewport": VIEWPORT, **context_options})
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
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
