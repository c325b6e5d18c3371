"""A live radmon web server on loopback and Debian's Chromium, for the browser tests.

Playwright drives /usr/bin/chromium (``executable_path``): nothing is downloaded. ``serve``
runs the real app under uvicorn in a thread; ``Watched`` collects what a page did, and
``assert_clean`` checks the page ran no injected script, raised no error and called nobody
outside the site.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
# Screenshots the browser tests keep, for a person to look at after a CI run.
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def closed_port() -> int:
    """A loopback port nobody listens on: requests to it fail at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run *app* on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's headless Chromium through Playwright; skips the test when it is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """What a page did: requests, dialogs, script errors and console complaints."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda msg: self.console.append(msg.text))

        def on_dialog(dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self, site_url: str, *also_allowed: str) -> None:
        assert self.dialogs == [], "a dialog fired: text from the data was run as script"
        assert self.errors == [], f"the page raised JavaScript errors: {self.errors}"
        assert not [m for m in self.console if "Content Security Policy" in m], self.console
        allowed = {urlsplit(site_url).netloc, *also_allowed}
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            assert parts.netloc in allowed, f"request left the site: {url}"


def sign_in(page, url: str, name: str, password: str, then: str = "/") -> None:
    """Ask for *then*, get the login form, sign in, and land back on *then*."""
    page.goto(url + then)
    assert "/login" in page.url, "the page let somebody in unseen"
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(url + then)


def screenshot(page, name: str) -> Path:
    """Keep a screenshot under test-artifacts/ (CI keeps the folder)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled")
    return path
