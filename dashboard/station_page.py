"""One station's page: what the duty officer opens from the map.

The server renders what does not depend on the chosen period (metadata, latest reading, open
alarms), so the page says something useful before and without its script; ``station.js``
then draws the chart over the period chosen and keeps the rest current.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboard.access import PageReader
from dashboard.api import MAX_SPAN
from dashboard.geojson import OFFLINE_AFTER_INTERVALS, is_online, reported_offline
from dashboard.web import page_context, render, root_path
from radmon import times
from radmon.config import Settings
from radmon.models import Alarm, LatestReading, Resolution, Station
from radmon.store import Store

# How often the page refreshes a live period (the map polls faster; this page is read).
POLL_MS = 60_000

# Alarm spans on the chart, and the open alarms, in the colour of their severity.
SEVERITY_COLOURS = {
    "info": "#1e88e5",
    "warning": "#f9a825",
    "alert": "#ef6c00",
    "emergency": "#c62828",
}

STATION_STRINGS: dict[str, dict[str, str]] = {
    "vi": {
        "station_title": "Trạm {name}",
        "station_details": "Thông tin trạm",
        "name": "Tên trạm",
        "coordinates": "Toạ độ",
        "elevation": "Độ cao",
        "probe_model": "Loại đầu dò",
        "interval": "Chu kỳ đo",
        "timezone_label": "Múi giờ",
        "site_zone": "{zone} (của đơn vị)",
        "rain_gauge": "Đo mưa",
        "yes": "có",
        "no": "không",
        "seconds": "{n} giây",
        "minutes": "{n} phút",
        "latest": "Số liệu mới nhất",
        "online": "đang hoạt động",
        "reported_offline": "mất kết nối (bộ thu thập báo)",
        "open_alarms": "Báo động đang mở",
        "no_open_alarms": "Không có báo động đang mở.",
        "since": "từ {time}",
        "acknowledged": "đã xác nhận ({who})",
        "unacknowledged": "chưa xác nhận",
        "peak": "đỉnh {value}",
        "chart_title": "Diễn biến suất liều",
        "chart_label": "Biểu đồ suất liều của trạm",
        "period": "Khoảng thời gian",
        "preset_6h": "6 giờ",
        "preset_24h": "24 giờ",
        "preset_7d": "7 ngày",
        "preset_30d": "30 ngày",
        "preset_1y": "1 năm",
        "resolution": "Độ phân giải",
        "res_raw": "Gốc",
        "res_hour": "Theo giờ",
        "res_day": "Theo ngày",
        "res_too_long": "Khoảng thời gian quá dài cho độ phân giải này",
        "reset_zoom": "Bỏ phóng to",
        "zoom_hint": "Kéo chuột ngang trên biểu đồ để phóng to một khoảng thời gian.",
        "availability": "Tỷ lệ số liệu",
        "availability_detail": "{pct} ({count}/{expected} số liệu)",
        "points": "{n} điểm",
        "legend_mean": "Suất liều (trung bình)",
        "legend_band": "Khoảng min–max",
        "legend_rain": "Lượng mưa (mm/h)",
        "legend_alarm": "Thời gian báo động",
        "rain_axis": "mm/h",
        "rain": "mưa {value} mm/h",
        "no_readings": "Không có số liệu trong khoảng thời gian này.",
        "load_failed": "Không tải được số liệu: {detail}",
        "updated": "Cập nhật {time}",
        "station_not_found": "Không có trạm mã {id}.",
        "back_to_map": "Về bản đồ",
        "ongoing": "đang diễn ra",
        "noscript_chart": "Biểu đồ cần JavaScript.",
    },
    "en": {
        "station_title": "Station {name}",
        "station_details": "Station details",
        "name": "Name",
        "coordinates": "Coordinates",
        "elevation": "Elevation",
        "probe_model": "Probe model",
        "interval": "Reporting interval",
        "timezone_label": "Time zone",
        "site_zone": "{zone} (the office's)",
        "rain_gauge": "Rain gauge",
        "yes": "yes",
        "no": "no",
        "seconds": "{n} s",
        "minutes": "{n} min",
        "latest": "Latest reading",
        "online": "online",
        "reported_offline": "offline (reported by its edge)",
        "open_alarms": "Open alarms",
        "no_open_alarms": "No open alarms.",
        "since": "since {time}",
        "acknowledged": "acknowledged ({who})",
        "unacknowledged": "not acknowledged",
        "peak": "peak {value}",
        "chart_title": "Dose-rate history",
        "chart_label": "Dose-rate chart of the station",
        "period": "Period",
        "preset_6h": "6 h",
        "preset_24h": "24 h",
        "preset_7d": "7 d",
        "preset_30d": "30 d",
        "preset_1y": "1 y",
        "resolution": "Resolution",
        "res_raw": "Raw",
        "res_hour": "Hourly",
        "res_day": "Daily",
        "res_too_long": "The period is too long for this resolution",
        "reset_zoom": "Reset zoom",
        "zoom_hint": "Drag across the chart to zoom into a period.",
        "availability": "Data availability",
        "availability_detail": "{pct} ({count} of {expected} readings)",
        "points": "{n} points",
        "legend_mean": "Dose rate (mean)",
        "legend_band": "Min–max range",
        "legend_rain": "Rain (mm/h)",
        "legend_alarm": "Alarm period",
        "rain_axis": "mm/h",
        "rain": "rain {value} mm/h",
        "no_readings": "No readings in this period.",
        "load_failed": "Could not load the readings: {detail}",
        "updated": "Updated {time}",
        "station_not_found": "There is no station {id}.",
        "back_to_map": "Back to the map",
        "ongoing": "ongoing",
        "noscript_chart": "The chart needs JavaScript.",
    },
}

router = APIRouter(include_in_schema=False)


def _number(value: float, lang: str, digits: int = 1) -> str:
    text = f"{value:,.{digits}f}"
    if lang == "vi":  # 1.234,5 as the Vietnamese write it
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def _dose(value: float, lang: str) -> str:
    text = f"{_number(value, lang)} nSv/h"
    if value >= 1000:
        text += f" ({_number(value / 1000, lang, 2)} µSv/h)"
    return text


def _local(moment: datetime, zone_name: str) -> str:
    """A time as the office reads it, written as the page's script writes it (GMT+7)."""
    local = moment.astimezone(times.zone(zone_name))
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    hours, rest = divmod(abs(minutes), 60)
    zone = f"GMT{'-' if minutes < 0 else '+'}{hours}{f':{rest:02d}' if rest else ''}"
    return f"{local:%d/%m/%Y %H:%M:%S} {zone if minutes else 'GMT'}"


def _interval(seconds: int, words: dict[str, str]) -> str:
    if seconds % 60 == 0:
        return words["minutes"].format(n=seconds // 60)
    return words["seconds"].format(n=seconds)


def _latest(store: Store, station_id: str) -> LatestReading | None:
    return next((item for item in store.latest() if item.station.station_id == station_id), None)


def _alarm_view(alarm: Alarm, lang: str, zone: str, words: dict[str, str]) -> dict[str, Any]:
    acked = words["acknowledged"].format(who=alarm.acked_by) if alarm.acked_by else None
    return {
        "id": alarm.id,
        "severity": alarm.severity.value,
        "severity_label": words.get(f"severity_{alarm.severity.value}", alarm.severity.value),
        "kind": alarm.kind,
        "since": words["since"].format(time=_local(alarm.opened_at, zone)),
        "ack": acked or words["unacknowledged"],
        "peak": (
            words["peak"].format(value=_dose(alarm.peak_nsv_h, lang))
            if alarm.peak_nsv_h is not None
            else None
        ),
    }


def _page_config(request: Request, station: Station, context: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    api = f"{root_path(request)}/api/v1"
    return {
        "lang": context["lang"],
        "locale": context["locale"],
        "strings": context["t"],
        "timezone": settings.site.timezone,
        "station_id": station.station_id,
        "interval_s": station.interval_s,
        "offline_after_s": OFFLINE_AFTER_INTERVALS * station.interval_s,
        "readings_url": f"{api}/stations/{station.station_id}/readings",
        "stations_url": f"{api}/stations",  # the map's layer: online and reported_offline
        "alarms_url": f"{api}/alarms",
        "stats_url": f"{api}/stats",
        "alarm_page": f"{root_path(request)}/alarms/",
        "max_span_s": {r.value: int(span.total_seconds()) for r, span in MAX_SPAN.items()},
        "resolutions": [r.value for r in Resolution],
        "severity_colours": SEVERITY_COLOURS,
        "poll_ms": POLL_MS,
        "default_preset": "24h",
    }


@router.get("/stations/{station_id}", response_class=HTMLResponse)
def station_page(station_id: str, request: Request, _user: PageReader) -> HTMLResponse:
    """A station's details, latest reading, open alarms and its dose-rate history."""
    store: Store = request.app.state.store
    station = store.station(station_id)
    if station is None:
        return render(
            request,
            "station.html",
            {"station": None, "missing_id": station_id},
            strings=STATION_STRINGS,
            status_code=404,
        )
    settings: Settings = request.app.state.settings
    common = page_context(request, STATION_STRINGS)
    words, lang = common["t"], common["lang"]
    zone = settings.site.timezone
    latest = _latest(store, station_id)
    reading = None
    if latest is not None and latest.time is not None and latest.dose_rate_nsv_h is not None:
        reported = station_id in reported_offline(request.app.state.ingest)
        reading = {
            "value": _dose(latest.dose_rate_nsv_h, lang),
            "time": _local(latest.time, zone),
            "online": is_online(latest, datetime.now(UTC)) and not reported,
            "reported_offline": reported,  # by its edge: the map shows the same
        }
    open_alarms = [
        _alarm_view(alarm, lang, zone, words)
        for alarm in store.alarms(state="open", station_id=station_id)
    ]
    context = {
        "station": station,
        "interval": _interval(station.interval_s, words),
        "zone_label": station.timezone or words["site_zone"].format(zone=zone),
        "lat": f"{station.lat:.5f}",
        "lon": f"{station.lon:.5f}",
        "elevation": (
            None if station.elevation_m is None else f"{_number(station.elevation_m, lang, 0)} m"
        ),
        "reading": reading,
        "open_alarms": open_alarms,
        "severity_colours": SEVERITY_COLOURS,
        "config": _page_config(request, station, common),
    }
    return render(request, "station.html", context, strings=STATION_STRINGS)
