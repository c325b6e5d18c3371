"""The alarm board and the alarm page in headless Chromium: order, live cues, actions, escaping.

Writes go through the JSON API as the loopback demo's officer, with the page's CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dashboard import alarm_pages, create_app
from radmon.models import Alarm, Category, Severity, Station
from radmon.store import Store
from tests.browser import Watched, screenshot, serve
from tests.dashboard.conftest import XSS_NAME, make_settings

pytestmark = pytest.mark.browser

IMG_XSS_NAME = '<img src=x onerror="alert(2)">'
HOSTILE_COMMENT = "<img src=x onerror=\"alert('c')\"><script>alert(3)</script>"
# What the statistical detector explains with a step (dashboard shows it at opening and now).
STEP_DETAILS = {
    "opened": {"test": "step", "reading_nsv_h": 410.0, "baseline_nsv_h": 95.0, "z": 8.2},
    "latest": {"test": "step", "reading_nsv_h": 612.5, "baseline_nsv_h": 95.0, "z": 14.9},
}
SEVERITY_ORDER = ["emergency", "alert", "warning", "info"]


@dataclass
class Site:
    url: str
    store: Store
    ids: dict[str, int]


def _alarm(station_id: str, severity: Severity, opened_at: datetime, **fields) -> Alarm:
    return Alarm(
        station_id=station_id,
        kind=fields.pop("kind", "threshold"),
        category=fields.pop("category", Category.RADIOLOGICAL),
        severity=severity,
        opened_at=opened_at,
        peak_nsv_h=fields.pop("peak_nsv_h", 300.0),
        baseline_nsv_h=fields.pop("baseline_nsv_h", 95.0),
        **fields,
    )


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    store.upgrade()
    store.upsert_stations(
        [
            Station(station_id="HN-001", name="Hà Nội – Cầu Giấy", lat=21.03, lon=105.79),
            Station(station_id="QN-X1", name=XSS_NAME, lat=21.0, lon=107.3),
            Station(station_id="QN-X2", name=IMG_XSS_NAME, lat=21.1, lon=107.2),
            Station(station_id="HP-003", name="Hải Phòng", lat=20.86, lon=106.68),
        ]
    )
    now = datetime.now(UTC).replace(microsecond=0)
    stored = store.record_alarms(
        [
            _alarm(
                "HN-001",
                Severity.ALERT,
                now - timedelta(hours=2),
                peak_nsv_h=612.5,
                details=STEP_DETAILS,
            ),
            _alarm("QN-X1", Severity.EMERGENCY, now - timedelta(hours=6), peak_nsv_h=150_000.0),
            _alarm(
                "HP-003",
                Severity.WARNING,
                now - timedelta(minutes=20),
                kind="offline",
                category=Category.TECHNICAL,
            ),
            _alarm(
                "QN-X2",
                Severity.INFO,
                now - timedelta(minutes=5),
                kind="noise_change",
                category=Category.TECHNICAL,
            ),
        ]
    )
    ids = dict(zip(["alert", "emergency", "warning", "info"], [a.id for a in stored], strict=True))
    try:
        with serve(create_app(store, settings, open_reads=True)) as url:
            yield Site(url, store, ids)  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.fixture
def page(browser, site: Site) -> Iterator[tuple[object, Watched]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    page = context.new_page()
    watched = Watched()
    watched.attach(page)
    yield page, watched
    context.close()
    watched.assert_clean(site.url)


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll every half second where the test is about actions, not about the interval."""
    monkeypatch.setattr(alarm_pages, "POLL_MS", 500)


def open_board(page, site: Site, query: str = "") -> None:
    page.goto(f"{site.url}/alarms{query}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.radmonBoard !== undefined", timeout=10_000)


def board(page) -> dict:
    return page.evaluate("() => Object.assign({}, window.radmonBoard)")


def rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#alarm-rows tr.alarm-row",
        """rows => rows.map(r => ({id: Number(r.dataset.alarmId), severity: r.dataset.severity,
            station: r.querySelector('.station-link').textContent,
            state: r.querySelector('.state').textContent,
            opened: r.querySelector('.opened').textContent,
            fresh: r.classList.contains('new')}))""",
    )


def row(page, alarm_id: int):
    return page.locator(f'#alarm-rows tr.alarm-row[data-alarm-id="{alarm_id}"]')


def act_on_board(page, alarm_id: int, action: str, comment: str = "") -> None:
    row(page, alarm_id).locator(f".act-{action}").click()
    form = page.locator(f"tr.action-row form.action-{action}")
    form.locator("textarea").fill(comment)
    form.locator("button.submit").click()


def test_the_board_orders_by_severity_and_cues_a_new_alarm(page, site: Site) -> None:
    """At the production poll interval: a new alarm shows and sounds within 10 s."""
    page, _ = page
    asked: list[tuple[str | None, int, str | None]] = []
    page.on(
        "response",
        lambda r: (
            "/api/v1/alarms?state=" in r.url
            and asked.append(
                (r.request.headers.get("if-none-match"), r.status, r.headers.get("etag"))
            )
        ),
    )
    open_board(page, site)
    listed = rows(page)
    assert [r["severity"] for r in listed] == SEVERITY_ORDER
    assert [r["id"] for r in listed] == [site.ids[s] for s in SEVERITY_ORDER]
    assert listed[0]["station"] == XSS_NAME  # a hostile name, shown as text
    assert all("GMT+7" in r["opened"] for r in listed)  # the site's zone, not the browser's
    assert all(r["state"] == "chưa xác nhận" and not r["fresh"] for r in listed)
    assert board(page)["alarms"] == 4 and board(page)["cues"] == 0
    assert page.locator("#new-alarms").is_hidden()
    assert page.locator("#alarm-rows script, #alarm-rows img").count() == 0
    title = page.title()

    now = datetime.now(UTC).replace(microsecond=0)
    [new] = site.store.record_alarms([_alarm("HN-001", Severity.EMERGENCY, now, kind="step")])
    started = time.monotonic()
    page.wait_for_function(
        "() => window.radmonBoard.cues >= 1 && window.radmonBoard.beeps >= 1", timeout=10_000
    )
    assert time.monotonic() - started < 10
    state = board(page)
    assert state["cues"] == 1 and state["alarms"] == 5 and state["polls"] >= 1
    assert state["beeps"] == 3  # an emergency beeps three times
    listed = rows(page)
    assert listed[0]["id"] == new.id and listed[0]["fresh"]  # emergency, and the newest
    assert [r["id"] for r in listed if r["fresh"]] == [new.id]
    assert page.locator("#new-alarms").inner_text().startswith("1 báo động mới")
    assert page.title() == f"(1) {title}"
    screenshot(page, "alarm-board")

    # nothing new: the next poll cues nothing, and asks with the ETag the API gave, if any
    polls = state["polls"]
    page.wait_for_function(f"() => window.radmonBoard.polls > {polls}", timeout=10_000)
    assert board(page)["cues"] == 1
    assert asked[0][0] is None and asked[0][1] == 200
    last, previous = asked[-1], asked[-2]
    if previous[2]:
        assert last[0] == previous[2] and last[1] == 304
    else:
        assert last[1] == 200
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1

    page.locator("#new-alarms button.dismiss").click()
    assert page.locator("#new-alarms").is_hidden()
    assert page.title() == title
    assert not any(r["fresh"] for r in rows(page))


@pytest.mark.usefixtures("fast_polls")
def test_acknowledge_comment_and_clear(page, site: Site) -> None:
    page, _ = page
    alarm_id = site.ids["alert"]
    open_board(page, site)
    act_on_board(page, alarm_id, "ack", "Đang đến hiện trường")
    page.wait_for_function(
        """([id, text]) => {
             const r = document.querySelector(`tr.alarm-row[data-alarm-id="${id}"]`);
             return r && r.querySelector('.state').textContent === text; }""",
        arg=[alarm_id, "đã xác nhận bởi demo"],
        timeout=5_000,
    )
    assert row(page, alarm_id).locator(".act-ack").is_hidden()
    assert "Đã xác nhận" in page.locator("#board-message").inner_text()
    assert site.store.alarm(alarm_id).acked_by == "demo"  # type: ignore[union-attr]

    # the unacknowledged-only filter hides it, and says so in the address
    page.locator("#filters input[name=unacked]").check()
    assert row(page, alarm_id).count() == 0
    assert "unacked=1" in page.url
    page.locator("#filters input[name=unacked]").uncheck()
    page.locator("#filters select[name=severity]").select_option("alert")
    assert [r["id"] for r in rows(page)] == [alarm_id]
    page.locator("#filters select[name=severity]").select_option("")

    row(page, alarm_id).locator("a.open-alarm").click()
    page.wait_for_url(f"**/alarms/{alarm_id}")
    history = page.locator("#history-rows")
    assert "Đang đến hiện trường" in history.inner_text()
    assert "demo" in history.locator("tr.event-acknowledged .actor").inner_text()
    assert page.locator("#alarm-state").inner_text() == "đã xác nhận bởi demo"

    # a comment from the alarm page joins the history without a reload
    page.locator("#action-note").fill("Đo lại bằng máy cầm tay: 105 nSv/h")
    page.locator('#alarm-actions button[data-action="comment"]').click()
    page.locator("#history-rows tr.event-comment").wait_for(timeout=5_000)
    assert "Đo lại bằng máy cầm tay" in page.locator("#history-rows tr.event-comment").inner_text()
    assert page.evaluate("() => window.radmonAlarm.actions") == 1
    assert page.locator("#action-note").input_value() == ""
    page.set_viewport_size({"width": 1280, "height": 1250})  # the history and the actions too
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, "alarm-page")
    assert "tăng bậc" in page.locator("section.explanation").inner_text()  # the test, in words

    # clearing from the board takes it off the open board, and it stays off
    open_board(page, site)
    act_on_board(page, alarm_id, "clear", "Nguồn đã được thu hồi")
    row(page, alarm_id).wait_for(state="detached", timeout=5_000)
    polls = board(page)["polls"]
    page.wait_for_function(f"() => window.radmonBoard.polls > {polls}", timeout=10_000)
    assert row(page, alarm_id).count() == 0
    assert [r["id"] for r in rows(page)] == [site.ids[s] for s in ("emergency", "warning", "info")]
    # shown again, as cleared, with "show cleared too"
    page.locator("#filters input[name=cleared]").check()
    row(page, alarm_id).wait_for(timeout=10_000)
    assert "đã kết thúc" in row(page, alarm_id).locator(".state").inner_text()
    assert board(page)["cues"] == 0  # a known alarm shown again is not news


@pytest.mark.usefixtures("fast_polls")
def test_hostile_text_stays_text(page, site: Site) -> None:
    page, watched = page
    alarm_id = site.ids["info"]  # at the station named like an <img onerror>
    open_board(page, site)
    assert row(page, alarm_id).locator(".station-link").inner_text() == IMG_XSS_NAME
    act_on_board(page, alarm_id, "comment", HOSTILE_COMMENT)
    page.locator("#board-message").filter(has_text="Đã thêm ghi chú").wait_for(timeout=5_000)
    page.goto(f"{site.url}/alarms/{alarm_id}", wait_until="domcontentloaded")
    note = page.locator("#history-rows tr.event-comment .note-text")
    assert note.inner_text() == HOSTILE_COMMENT
    assert page.locator("main img, main script").count() == 0
    assert page.locator(".station-link").inner_text() == IMG_XSS_NAME
    # and when the history is drawn by the script, after an action
    page.locator("#action-note").fill(HOSTILE_COMMENT)
    page.locator('#alarm-actions button[data-action="comment"]').click()
    page.wait_for_function("() => window.radmonAlarm.actions === 1", timeout=5_000)
    page.locator("#history-rows tr.event-comment").nth(1).wait_for(timeout=5_000)
    assert page.locator("#history-rows .note-text").all_inner_texts() == [HOSTILE_COMMENT] * 2
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(300)  # let an injected handler run, if there were one
    assert watched.dialogs == []


@pytest.mark.usefixtures("fast_polls")
def test_refusals_are_shown_in_words(page, site: Site) -> None:
    page, _ = page
    alarm_id = site.ids["warning"]
    page.goto(f"{site.url}/alarms/{alarm_id}", wait_until="domcontentloaded")
    message = page.locator("#alarm-actions .action-message")
    page.locator('#alarm-actions button[data-action="comment"]').click()  # empty: 422
    message.filter(has_text="Dữ liệu không hợp lệ").wait_for(timeout=5_000)
    assert "error" in (message.get_attribute("class") or "")
    page.evaluate(
        "() => document.querySelector('meta[name=csrf-token]').setAttribute('content', 'forged')"
    )
    page.locator('#alarm-actions button[data-action="ack"]').click()
    message.filter(has_text="Không được phép").wait_for(timeout=5_000)
    assert "CSRF" in message.inner_text()
    assert site.store.alarm(alarm_id).acked_by is None  # type: ignore[union-attr]


@pytest.mark.usefixtures("fast_polls")
def test_sound_can_be_switched_off_and_stays_off(page, site: Site) -> None:
    page, _ = page
    open_board(page, site)
    toggle = page.locator("#sound-toggle")
    assert toggle.inner_text() == "Âm thanh: bật"
    toggle.click()
    assert toggle.inner_text() == "Âm thanh: tắt"
    open_board(page, site)  # a reload remembers it
    assert page.locator("#sound-toggle").inner_text() == "Âm thanh: tắt"
    now = datetime.now(UTC).replace(microsecond=0)
    site.store.record_alarms([_alarm("HP-003", Severity.ALERT, now)])
    page.wait_for_function("() => window.radmonBoard.cues === 1", timeout=10_000)
    assert board(page)["beeps"] == 0
    assert page.locator("#new-alarms").is_visible()


@pytest.mark.usefixtures("fast_polls")
def test_a_held_back_audio_context_asks_for_a_click(page, site: Site) -> None:
    page, _ = page
    # As a browser without the autoplay flag: the context starts suspended until a gesture.
    page.add_init_script(
        """(() => {
             const Real = window.AudioContext;
             window.AudioContext = class extends Real {
               constructor() { super(); this.suspend(); }
             };
           })()"""
    )
    open_board(page, site)
    hint = page.locator("#sound-hint")
    hint.wait_for(state="visible", timeout=5_000)
    assert hint.inner_text() == "Bấm vào đây để bật âm thanh báo động"
    now = datetime.now(UTC).replace(microsecond=0)
    site.store.record_alarms([_alarm("HP-003", Severity.ALERT, now)])
    page.wait_for_function("() => window.radmonBoard.cues === 1", timeout=10_000)
    assert board(page)["beeps"] == 0  # held back: nothing was started
    hint.click()
    hint.wait_for(state="hidden", timeout=5_000)
