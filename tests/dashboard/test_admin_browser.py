"""The users page in headless Chromium: an admin adds a user by the form; a viewer is kept out.

A real server on loopback (not the open demo), Debian's /usr/bin/chromium through Playwright.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dashboard import create_app
from radmon import users
from radmon.store import Store
from radmon.users import add_user, get_user
from tests.browser import Watched, chromium, screenshot, serve, sign_in
from tests.dashboard.conftest import make_settings, seed

pytestmark = pytest.mark.browser

PASSWORD = "correct horse"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Store]]:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    store.upgrade()
    seed(store, datetime.now(UTC).replace(microsecond=0))
    add_user(store, "an", "admin", PASSWORD)
    add_user(store, "viet", "viewer", PASSWORD)
    try:
        with serve(create_app(store, settings)) as url:
            yield url, store
    finally:
        store.close()


def test_an_admin_adds_a_user_and_a_viewer_is_kept_out(site: tuple[str, Store]) -> None:
    url, store = site
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        page = context.new_page()
        watched = Watched()
        watched.attach(page)
        sign_in(page, url, "an", PASSWORD, "/admin/users")
        assert page.locator('nav.main-nav a[href="/admin/users"]').count() == 1
        form = page.locator("#add-user")
        form.locator("#new-name").fill("chi")
        form.locator("#new-role").select_option("officer")
        form.locator("#new-password").fill("mật khẩu mới")
        form.locator("#new-password-again").fill("mật khẩu mới")
        form.locator("button[type=submit]").click()
        page.wait_for_url(f"{url}/admin/users?done=user_added&subject=chi")
        assert page.locator("p.flash").inner_text() == "Đã thêm người dùng chi."
        row = page.locator('tr[data-user="chi"]')
        assert row.locator(".user-role").inner_text() == "trực ban"
        assert row.locator(".user-state").inner_text() == "đang hoạt động"
        assert get_user(store, "chi").role == "officer"
        screenshot(page, "admin-users")
        context.close()
        watched.assert_clean(url)

        context = browser.new_context(locale="vi-VN")
        page = context.new_page()
        sign_in(page, url, "viet", PASSWORD, "/alarms")
        assert page.locator("nav.main-nav a").count() == 2  # map and alarms, no administration
        assert page.locator('a[href="/admin/users"]').count() == 0
        answer = page.goto(url + "/admin/users")
        assert answer.status == 403
        assert "viet is viewer" in page.inner_text("body")
        context.close()
