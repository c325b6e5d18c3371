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
    },
}

# Locale tags for the browser's Intl formatting of numbers and local times.
LOCALES = {"vi": "vi-VN", "en": "en-GB"}


def choose_language(requested: str | None, default: str) -> str:
    """*requested* when it is a language we have, else the site's *default* (else Vietnamese)."""
    if requested in LANGUAGES:
        return requested
    return default if default in LANGUAGES else "vi"
