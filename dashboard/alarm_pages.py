"""The duty officer's worklist: the alarm board (``/alarms``) and one alarm (``/alarms/{id}``).

Both pages are rendered in full on the server (they read without JavaScript), then
``alarms.js`` takes over: the board polls ``/api/v1/alarms`` and cues new alarms; both send
acknowledgements, clearings and comments to the JSON API with the page's CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboard.access import PageReader
from dashboard.api import MAX_ROW_ID
from dashboard.web import page_context, render, root_path
from radmon import times
from radmon.config import Settings
from radmon.models import Alarm, Category, Severity
from radmon.store import Store
from radmon.users import Role, User

POLL_MS = 5000
# What the board lists at most: as the API's default answer, so a poll shows the same rows.
BOARD_LIMIT = 1000

SEVERITIES = [s.value for s in Severity]
CATEGORIES = [c.value for c in Category]

router = APIRouter(include_in_schema=False)

ALARM_STRINGS: dict[str, dict[str, str]] = {
    "vi": {
        "decimal_mark": ",",
        "group_mark": ".",
        "board_title": "Bảng báo động",
        "board_status": "{n} báo động · cập nhật {time}",
        "col_station": "Trạm",
        "col_kind": "Kiểu",
        "col_category": "Loại",
        "col_severity": "Mức độ",
        "col_opened": "Bắt đầu",
        "col_peak": "Đỉnh (nSv/h)",
        "col_baseline": "Phông (nSv/h)",
        "col_state": "Trạng thái",
        "col_actions": "Xử lý",
        "filters": "Lọc",
        "filter_severity": "Mức độ",
        "filter_category": "Loại",
        "filter_station": "Trạm",
        "filter_all": "Tất cả",
        "show_cleared": "Hiện cả báo động đã kết thúc",
        "unacked_only": "Chỉ báo động chưa xác nhận",
        "no_alarms": "Không có báo động nào.",
        "category_radiological": "phóng xạ",
        "category_technical": "kỹ thuật",
        "state_active_unack": "chưa xác nhận",
        "state_active_ack": "đã xác nhận bởi {name}",
        "state_cleared_unack": "đã kết thúc, chưa xác nhận",
        "state_cleared_ack": "đã kết thúc, xác nhận bởi {name}",
        "new_alarms": "{n} báo động mới",
        "dismiss": "Đã xem",
        "sound_on": "Âm thanh: bật",
        "sound_off": "Âm thanh: tắt",
        "sound_hint": "Bấm vào đây để bật âm thanh báo động",
        "open_alarm": "Chi tiết",
        "action_ack": "Xác nhận",
        "action_clear": "Kết thúc",
        "action_comment": "Ghi chú",
        "ack_title": "Xác nhận báo động #{id}",
        "clear_title": "Kết thúc báo động #{id}",
        "comment_title": "Ghi chú cho báo động #{id}",
        "note_optional": "Ghi chú (không bắt buộc)",
        "note_required": "Nội dung ghi chú",
        "submit": "Gửi",
        "cancel": "Huỷ",
        "sending": "Đang gửi…",
        "done_ack": "Đã xác nhận.",
        "done_clear": "Đã kết thúc báo động.",
        "done_comment": "Đã thêm ghi chú.",
        "error_401": "Cần đăng nhập",
        "error_403": "Không được phép",
        "error_404": "Không tìm thấy báo động",
        "error_422": "Dữ liệu không hợp lệ",
        "error_other": "Máy chủ báo lỗi",
        "error_network": "Không kết nối được máy chủ; hãy thử lại",
        "alarm_title": "Báo động #{id}",
        "alarm_missing": "Không có báo động #{id}.",
        "back_to_board": "← Bảng báo động",
        "station_page": "Trang của trạm",
        "field_state": "Trạng thái",
        "field_opened": "Bắt đầu",
        "field_updated": "Cập nhật lần cuối",
        "field_raised": "Hệ thống ghi nhận",
        "field_cleared": "Kết thúc lúc",
        "field_cleared_by": "Người kết thúc",
        "field_acked": "Xác nhận lúc",
        "field_acked_by": "Người xác nhận",
        "field_peak": "Đỉnh",
        "field_baseline": "Phông",
        "field_ratio": "Đỉnh / phông",
        "explanation": "Giải thích",
        "explain_field": "Đại lượng",
        "at_opening": "Khi bắt đầu",
        "latest": "Gần nhất",
        "value": "Giá trị",
        "no_details": "Bộ phát hiện không ghi thêm chi tiết.",
        "history": "Lịch sử",
        "history_when": "Thời gian",
        "history_event": "Sự kiện",
        "history_who": "Người thực hiện",
        "history_note": "Ghi chú",
        "system": "hệ thống",
        "actions": "Xử lý",
        "yes": "có",
        "no": "không",
        "event_opened": "mở báo động",
        "event_severity": "tăng mức độ",
        "event_acknowledged": "xác nhận",
        "event_cleared": "kết thúc",
        "event_comment": "ghi chú",
        "kind_threshold": "vượt ngưỡng",
        "kind_dose_level": "vượt mức suất liều",
        "kind_transient": "tăng đột ngột ngắn",
        "kind_step": "tăng bậc",
        "kind_regional_rise": "tăng trên diện rộng",
        "kind_rising": "tăng dần",
        "kind_offline": "mất kết nối",
        "kind_stuck": "giá trị không đổi",
        "kind_out_of_range": "ngoài dải đo",
        "kind_noise_change": "thay đổi độ nhiễu",
        "kind_future_time": "thời gian ở tương lai",
        "detail_test": "Phép thử",
        "detail_reading_nsv_h": "Số đọc (nSv/h)",
        "detail_baseline_nsv_h": "Phông (nSv/h)",
        "detail_expected_nsv_h": "Giá trị kỳ vọng (nSv/h)",
        "detail_excess_nsv_h": "Phần vượt (nSv/h)",
        "detail_excess_pct": "Phần vượt (%)",
        "detail_sigma_nsv_h": "Độ lệch chuẩn σ (nSv/h)",
        "detail_z": "Số σ (z)",
        "detail_cusum": "CUSUM",
        "detail_cusum_threshold": "Ngưỡng CUSUM",
        "detail_rain_mm_h": "Mưa (mm/h)",
        "detail_rain_measured": "Mưa đo tại trạm",
        "detail_rain_excess_pct": "Tăng do mưa (%)",
        "detail_neighbours_rising": "Trạm lân cận cùng tăng",
        "detail_last_abnormal_at": "Lần bất thường gần nhất",
        "detail_level_nsv_h": "Mức bị vượt (nSv/h)",
        "detail_range_nsv_h": "Dải đo (nSv/h)",
        "detail_value_nsv_h": "Giá trị lặp lại (nSv/h)",
        "detail_repeats": "Số lần lặp",
        "detail_ratio": "Tỉ số nhiễu",
        "detail_last_reading_at": "Số đọc cuối lúc",
        "detail_severity": "Mức độ",
        "detail_peak_nsv_h": "Đỉnh (nSv/h)",
        "detail_from": "Từ",
        "detail_to": "Lên",
        "detail_cleared_at": "Kết thúc lúc",
    },
    "en": {
        "decimal_mark": ".",
        "group_mark": ",",
        "board_title": "Alarm board",
        "board_status": "{n} alarms · updated {time}",
        "col_station": "Station",
        "col_kind": "Kind",
        "col_category": "Category",
        "col_severity": "Severity",
        "col_opened": "Opened",
        "col_peak": "Peak (nSv/h)",
        "col_baseline": "Baseline (nSv/h)",
        "col_state": "State",
        "col_actions": "Actions",
        "filters": "Filters",
        "filter_severity": "Severity",
        "filter_category": "Category",
        "filter_station": "Station",
        "filter_all": "All",
        "show_cleared": "Show cleared alarms too",
        "unacked_only": "Unacknowledged only",
        "no_alarms": "No alarms.",
        "category_radiological": "radiological",
        "category_technical": "technical",
        "state_active_unack": "unacknowledged",
        "state_active_ack": "acknowledged by {name}",
        "state_cleared_unack": "cleared, unacknowledged",
        "state_cleared_ack": "cleared, acknowledged by {name}",
        "new_alarms": "{n} new alarms",
        "dismiss": "Seen",
        "sound_on": "Sound: on",
        "sound_off": "Sound: off",
        "sound_hint": "Click here to enable the alarm sound",
        "open_alarm": "Details",
        "action_ack": "Acknowledge",
        "action_clear": "Clear",
        "action_comment": "Comment",
        "ack_title": "Acknowledge alarm #{id}",
        "clear_title": "Clear alarm #{id}",
        "comment_title": "Comment on alarm #{id}",
        "note_optional": "Comment (optional)",
        "note_required": "Comment",
        "submit": "Send",
        "cancel": "Cancel",
        "sending": "Sending…",
        "done_ack": "Acknowledged.",
        "done_clear": "Alarm cleared.",
        "done_comment": "Comment added.",
        "error_401": "Sign-in required",
        "error_403": "Not allowed",
        "error_404": "Alarm not found",
        "error_422": "Invalid input",
        "error_other": "The server reported an error",
        "error_network": "Could not reach the server; try again",
        "alarm_title": "Alarm #{id}",
        "alarm_missing": "There is no alarm #{id}.",
        "back_to_board": "← Alarm board",
        "station_page": "Station page",
        "field_state": "State",
        "field_opened": "Opened",
        "field_updated": "Last updated",
        "field_raised": "Recorded by the system",
        "field_cleared": "Cleared at",
        "field_cleared_by": "Cleared by",
        "field_acked": "Acknowledged at",
        "field_acked_by": "Acknowledged by",
        "field_peak": "Peak",
        "field_baseline": "Baseline",
        "field_ratio": "Peak / baseline",
        "explanation": "Explanation",
        "explain_field": "Quantity",
        "at_opening": "At opening",
        "latest": "Latest",
        "value": "Value",
        "no_details": "The detector recorded no further details.",
        "history": "History",
        "history_when": "When",
        "history_event": "Event",
        "history_who": "Who",
        "history_note": "Note",
        "system": "system",
        "actions": "Actions",
        "yes": "yes",
        "no": "no",
        "event_opened": "opened",
        "event_severity": "severity raised",
        "event_acknowledged": "acknowledged",
        "event_cleared": "cleared",
        "event_comment": "comment",
        "kind_threshold": "threshold exceeded",
        "kind_dose_level": "dose-rate level exceeded",
        "kind_transient": "short transient",
        "kind_step": "step rise",
        "kind_regional_rise": "regional rise",
        "kind_rising": "gradual rise",
        "kind_offline": "offline",
        "kind_stuck": "stuck value",
        "kind_out_of_range": "out of range",
        "kind_noise_change": "noise change",
        "kind_future_time": "time in the future",
        "detail_test": "Test",
        "detail_reading_nsv_h": "Reading (nSv/h)",
        "detail_baseline_nsv_h": "Baseline (nSv/h)",
        "detail_expected_nsv_h": "Expected (nSv/h)",
        "detail_excess_nsv_h": "Excess (nSv/h)",
        "detail_excess_pct": "Excess (%)",
        "detail_sigma_nsv_h": "Standard deviation σ (nSv/h)",
        "detail_z": "Sigmas (z)",
        "detail_cusum": "CUSUM",
        "detail_cusum_threshold": "CUSUM threshold",
        "detail_rain_mm_h": "Rain (mm/h)",
        "detail_rain_measured": "Rain measured at the station",
        "detail_rain_excess_pct": "Rise explained by rain (%)",
        "detail_neighbours_rising": "Neighbours rising too",
        "detail_last_abnormal_at": "Last abnormal reading",
        "detail_level_nsv_h": "Level exceeded (nSv/h)",
        "detail_range_nsv_h": "Measuring range (nSv/h)",
        "detail_value_nsv_h": "Repeated value (nSv/h)",
        "detail_repeats": "Repeats",
        "detail_ratio": "Noise ratio",
        "detail_last_reading_at": "Last reading at",
        "detail_severity": "Severity",
        "detail_peak_nsv_h": "Peak (nSv/h)",
        "detail_from": "From",
        "detail_to": "To",
        "detail_cleared_at": "Cleared at",
    },
}


def _store(request: Request) -> Store:
    return request.app.state.store


def can_act(request: Request, reader: User | None) -> bool:
    """Whether the page offers the alarm actions: officers and above, or the open demo's officer."""
    user = reader or getattr(request.state, "user", None)
    if user is None:
        return bool(request.app.state.open_reads)
    return user.role.at_least(Role.OFFICER)


def _local(value: datetime | None, zone_name: str) -> str:
    """*value* in the site's zone, for the server-rendered page (scripts redo it with Intl)."""
    if value is None:
        return "–"
    return times.ensure_utc(value).astimezone(times.zone(zone_name)).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float | None, words: dict[str, str]) -> str:
    """At most two decimals, with the language's marks (as the scripts' Intl formats them)."""
    if value is None:
        return "–"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.translate(str.maketrans({",": words["group_mark"], ".": words["decimal_mark"]}))


def _value(value: Any, words: dict[str, str]) -> str:
    """A detail value as words: numbers rounded, lists joined, yes / no."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return words["yes"] if value else words["no"]
    if isinstance(value, int | float):
        return _number(float(value), words)
    if isinstance(value, list | tuple):
        return ", ".join(_value(v, words) for v in value) or "–"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(v, words)}" for k, v in value.items())
    return str(value)


def _is_time(key: str) -> bool:
    return key.endswith("_at")


def _cell(key: str, value: Any, words: dict[str, str], zone_name: str) -> dict[str, Any]:
    """One value of the explanation: text, plus the ISO time when it is a moment."""
    if _is_time(key) and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return {"text": value, "time": None}
        if moment.tzinfo is not None:
            return {"text": _local(moment, zone_name), "time": times.ensure_utc(moment).isoformat()}
    if key == "test" and isinstance(value, str):  # the statistical test names the kind
        return {"text": _label(words, "kind", value), "time": None}
    return {"text": _value(value, words), "time": None}


def _label(words: dict[str, str], prefix: str, key: str) -> str:
    return words.get(f"{prefix}_{key}", key)


def explanation(details: dict[str, Any], words: dict[str, str], zone: str) -> dict[str, Any]:
    """The detector's details as rows: at opening and latest side by side where both exist."""
    opened = details.get("opened")
    latest = details.get("latest")
    paired = isinstance(opened, dict) or isinstance(latest, dict)
    opened = opened if isinstance(opened, dict) else {}
    latest = latest if isinstance(latest, dict) else {}
    rows = []
    if paired:
        for key in dict.fromkeys([*opened, *latest]):
            rows.append(
                {
                    "label": _label(words, "detail", key),
                    "opened": _cell(key, opened.get(key), words, zone),
                    "latest": _cell(key, latest.get(key), words, zone),
                }
            )
    others = [
        {"label": _label(words, "detail", key), "value": _cell(key, value, words, zone)}
        for key, value in details.items()
        if not (paired and key in ("opened", "latest"))
    ]
    return {"paired": paired, "rows": rows, "others": others}


def _event_details(event: dict[str, Any], words: dict[str, str], zone: str) -> str:
    """What the detectors noted with an event (severity, peak), as one line."""
    parts = []
    for key, value in (event.get("details") or {}).items():
        if key == "severity" or key in ("from", "to"):
            value = words.get(f"severity_{value}", value)
        parts.append(f"{_label(words, 'detail', key)}: {_cell(key, value, words, zone)['text']}")
    return "; ".join(parts)


def _station_names(store: Store) -> dict[str, str]:
    return {station.station_id: station.name for station in store.stations()}


def _alarm_json(alarm: Alarm) -> dict[str, Any]:
    return alarm.model_dump(mode="json")


def board_order(alarms: list[Alarm]) -> list[Alarm]:
    """Most severe first, then the newest: the order a duty officer works through them."""
    return sorted(alarms, key=lambda a: (-a.severity.rank, -a.opened_at.timestamp(), -(a.id or 0)))


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") in ("1", "true", "on", "yes")


def board_filters(request: Request, stations: dict[str, str]) -> dict[str, Any]:
    """The filters a query asks for (``?severity=&category=&station=&cleared=1&unacked=1``)."""
    query = request.query_params
    severity = query.get("severity", "")
    category = query.get("category", "")
    station = query.get("station", "")
    return {
        "severity": severity if severity in SEVERITIES else "",
        "category": category if category in CATEGORIES else "",
        "station": station if station in stations else "",
        "cleared": _flag(request, "cleared"),
        "unacked": _flag(request, "unacked"),
    }


def _shown(alarm: Alarm, filters: dict[str, Any]) -> bool:
    if filters["severity"] and alarm.severity.value != filters["severity"]:
        return False
    if filters["category"] and alarm.category.value != filters["category"]:
        return False
    if filters["station"] and alarm.station_id != filters["station"]:
        return False
    if not filters["cleared"] and not alarm.state.is_open:
        return False
    return not (filters["unacked"] and alarm.acked_by is not None)


def state_text(alarm: Alarm, words: dict[str, str]) -> str:
    return words[f"state_{alarm.state.value}"].replace("{name}", alarm.acked_by or "")


def _config(request: Request, words: dict[str, str], acting: bool) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    context = page_context(request)
    root = root_path(request)
    return {
        "lang": context["lang"],
        "locale": context["locale"],
        "strings": words,
        "timezone": settings.site.timezone,
        "alarms_url": f"{root}/api/v1/alarms",
        "alarm_page": f"{root}/alarms/",
        "station_page": f"{root}/stations/",
        "can_act": acting,
        "severities": SEVERITIES,
    }


@router.get("/alarms", response_class=HTMLResponse)
def alarm_board(request: Request, reader: PageReader) -> HTMLResponse:
    """Open alarms, most severe and newest first; the script keeps it current and cues new ones."""
    store = _store(request)
    settings: Settings = request.app.state.settings
    words = page_context(request, ALARM_STRINGS)["t"]
    stations = _station_names(store)
    filters = board_filters(request, stations)
    state = "all" if filters["cleared"] else "open"
    alarms = store.alarms(state=state, limit=BOARD_LIMIT)
    acting = can_act(request, reader)
    zone = settings.site.timezone
    rows = [
        {
            "alarm": alarm,
            "name": stations.get(alarm.station_id, alarm.station_id),
            "kind": _label(words, "kind", alarm.kind),
            "opened": _local(alarm.opened_at, zone),
            "peak": _number(alarm.peak_nsv_h, words),
            "baseline": _number(alarm.baseline_nsv_h, words),
            "state": state_text(alarm, words),
        }
        for alarm in board_order(alarms)
        if _shown(alarm, filters)
    ]
    config = _config(request, words, acting)
    config.update(
        {
            "poll_ms": POLL_MS,
            "stations": stations,
            "filters": filters,
            # the newest id when the page was made: later ids are new even when already cleared
            "max_id": max((a.id or 0 for a in alarms), default=0),
            "initial": {"state": state, "data": [_alarm_json(a) for a in alarms]},
        }
    )
    now = _local(datetime.now(UTC), zone)[11:16]
    context = {
        "status": words["board_status"].replace("{n}", str(len(rows))).replace("{time}", now),
        "rows": rows,
        "stations": stations,
        "filters": filters,
        "severities": SEVERITIES,
        "categories": CATEGORIES,
        "can_act": acting,
        "config": config,
    }
    return render(request, "alarms.html", context, strings=ALARM_STRINGS)


def _alarm_id(text: str) -> int | None:
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ROW_ID else None


@router.get("/alarms/{alarm_id}", response_class=HTMLResponse)
def alarm_page(alarm_id: str, request: Request, reader: PageReader) -> HTMLResponse:
    """One alarm: what, where, why (the detector's numbers), its history, and the actions."""
    store = _store(request)
    settings: Settings = request.app.state.settings
    words = page_context(request, ALARM_STRINGS)["t"]
    number = _alarm_id(alarm_id)
    alarm = store.alarm(number) if number is not None else None
    if alarm is None:
        context = {"alarm": None, "missing_id": alarm_id}
        return render(request, "alarm.html", context, strings=ALARM_STRINGS, status_code=404)
    zone = settings.site.timezone
    station = store.station(alarm.station_id)
    history = [
        {
            "event": event,
            "label": _label(words, "event", event["event"]),
            "at": _local(event["at"], zone),
            "at_iso": times.ensure_utc(event["at"]).isoformat(),
            "details": _event_details(event, words, zone),
        }
        for event in store.alarm_history(alarm.id)  # type: ignore[arg-type]
    ]
    ratio = None
    if alarm.peak_nsv_h is not None and alarm.baseline_nsv_h:
        ratio = alarm.peak_nsv_h / alarm.baseline_nsv_h
    acting = can_act(request, reader)
    config = _config(request, words, acting)
    config.update({"alarm": _alarm_json(alarm)})

    def moment(value: datetime | None) -> dict[str, Any]:
        iso = times.ensure_utc(value).isoformat() if value is not None else None
        return {"text": _local(value, zone), "time": iso}

    context = {
        "alarm": alarm,
        "station_name": station.name if station else alarm.station_id,
        "kind": _label(words, "kind", alarm.kind),
        "state": state_text(alarm, words),
        "moments": {
            "opened": moment(alarm.opened_at),
            "updated": moment(alarm.updated_at),
            "raised": moment(alarm.raised_at),
            "cleared": moment(alarm.cleared_at),
            "acked": moment(alarm.acked_at),
        },
        "peak": _number(alarm.peak_nsv_h, words),
        "baseline": _number(alarm.baseline_nsv_h, words),
        "ratio": _number(ratio, words) if ratio is not None else None,
        "explanation": explanation(alarm.details, words, zone),
        "history": history,
        "can_act": acting,
        "config": config,
    }
    return render(request, "alarm.html", context, strings=ALARM_STRINGS)
