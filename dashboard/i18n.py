"""The page's words in Vietnamese and English; ``site.language`` chooses, ``?lang=`` overrides."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

STRINGS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Bản đồ suất liều gamma",
        "status": "{n} trạm · cập nhật {time}",
        "loading": "Đang tải…",
        "connection_lost": "Máy chủ không phản hồi; đang thử lại…",
        "legend_title": "Suất liều H*(10)",
        "no_data": "Mất kết nối / không có số liệu",
        "station_id": "Mã trạm",
        "dose_rate": "Suất liều",
        "time": "Thời gian",
        "district": "Quận/huyện",
        "offline": "mất kết nối",
        "never_reported": "chưa có số liệu",
        "alarm": "Báo động",
        "severity_info": "thông tin",
        "severity_warning": "chú ý",
        "severity_alert": "cảnh báo",
        "severity_emergency": "khẩn cấp",
        "noscript": "Bản đồ cần JavaScript. Danh sách trạm:",
        "station": "Trạm",
        "login_title": "Cần đăng nhập",
        "login_pending": "Phiên đăng nhập đã hết hạn; hãy tải lại trang để đăng nhập.",
        "nav_label": "Trang",
        "nav_map": "Bản đồ",
        "nav_alarms": "Báo động",
        "nav_admin": "Quản trị",
        "language": "Ngôn ngữ",
        "logout": "Đăng xuất",
        "forbidden": "Không đủ quyền",
        "not_found": "Không tìm thấy",
        # the live map (dashboard/static/map.js)
        "legend_alarm": "Viền: báo động đang mở",
        "layer_tiles": "Bản đồ nền",
        "layer_outline": "Ranh giới tỉnh (ngoại tuyến)",
        "layer_all": "Tất cả trạm",
        "layer_alarm": "Trạm đang báo động",
        "layer_offline": "Trạm mất kết nối",
        "tiles_fallback": "không tải được bản đồ nền, đang hiện ranh giới tỉnh",
        "tiles_unavailable": "không tải được bản đồ nền",
        "last_24h": "24 giờ qua (trung bình giờ)",
        "series_range": "thấp nhất {min} · cao nhất {max}",
        "no_series": "không có số liệu trong 24 giờ qua",
        "open_alarms": "Báo động đang mở",
        "no_open_alarms": "không có báo động đang mở",
        "station_page": "Trang trạm",
        "loading_short": "đang tải…",
        "unavailable": "không tải được",
    },
    "en": {
        "title": "Gamma dose-rate map",
        "status": "{n} stations · updated {time}",
        "loading": "Loading…",
        "connection_lost": "No answer from the server; retrying…",
        "legend_title": "Dose rate H*(10)",
        "no_data": "Offline / no data",
        "station_id": "Station ID",
        "dose_rate": "Dose rate",
        "time": "Time",
        "district": "District",
        "offline": "offline",
        "never_reported": "no reading yet",
        "alarm": "Alarm",
        "severity_info": "info",
        "severity_warning": "warning",
        "severity_alert": "alert",
        "severity_emergency": "emergency",
        "noscript": "The map needs JavaScript. The stations:",
        "station": "Station",
        "login_title": "Login required",
        "login_pending": "Your session has ended; reload the page to sign in again.",
        "nav_label": "Pages",
        "nav_map": "Map",
        "nav_alarms": "Alarms",
        "nav_admin": "Administration",
        "language": "Language",
        "logout": "Log out",
        "forbidden": "Not allowed",
        "not_found": "Not found",
        # the live map (dashboard/static/map.js)
        "legend_alarm": "Ring: open alarm",
        "layer_tiles": "Map tiles",
        "layer_outline": "Province outline (offline)",
        "layer_all": "All stations",
        "layer_alarm": "Stations in alarm",
        "layer_offline": "Offline stations",
        "tiles_fallback": "map tiles unreachable: showing the province outline",
        "tiles_unavailable": "map tiles unreachable",
        "last_24h": "Last 24 h (hourly means)",
        "series_range": "min {min} · max {max}",
        "no_series": "no readings in the last 24 h",
        "open_alarms": "Open alarms",
        "no_open_alarms": "no open alarms",
        "station_page": "Station page",
        "loading_short": "loading…",
        "unavailable": "could not be loaded",
    },
}

# Locale tags for the browser's Intl formatting of numbers and local times.
LOCALES = {"vi": "vi-VN", "en": "en-GB"}


def choose_language(requested: str | None, default: str) -> str:
    """*requested* when it is a language we have, else the site's *default* (else Vietnamese)."""
    if requested in LANGUAGES:
        return requested
    return default if default in LANGUAGES else "vi"
