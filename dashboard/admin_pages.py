"""The administrator's pages: users, stations, tokens and the audit log (``/admin/...``).

Plain HTML forms, so administration works without JavaScript. Each POST checks the form's
CSRF token before anything else, then answers with a redirect back to its list and a short
message in the query, or with the form again (422) saying which field is wrong. The audit
middleware records every POST under its route; handlers add what it cannot see (a new role,
how many stations) in ``request.state.audit``, so each act is one entry. A new token is shown
once, in the answer to its POST: never in a URL, a redirect or the audit log.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from dashboard import csrf, sessions
from dashboard.access import page_role
from dashboard.api import MAX_ROW_ID
from dashboard.request_rules import NO_NUL
from dashboard.web import page_language, render, root_path
from radmon import api_tokens, audit, times
from radmon.errors import InputError, first_problem
from radmon.models import Station
from radmon.stations_io import read_stations_csv
from radmon.store import Store
from radmon.users import (
    MAX_PASSWORD,
    Role,
    User,
    add_user,
    check_name,
    check_password,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
)

_admin = page_role("admin")
Admin = Annotated[User, Depends(_admin)]

# The router's own dependency too, so a route added later cannot forget it (FastAPI runs the
# same dependency once per request).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(_admin)])

ROLES = [role.value for role in Role]
# Entries per page of the audit log.
AUDIT_PAGE = 50
# A stations CSV of a whole country is well under this; more is a mistake or an attack.
MAX_CSV_BYTES = 2 * 1024 * 1024
# Longest text a form field takes (names are 64, station names 200, labels a line).
MAX_FIELD = 500


CsrfField = Annotated[str, Form(max_length=200)]
Text = Annotated[str, Form(max_length=MAX_FIELD, pattern=NO_NUL)]
Secret = Annotated[str, Form(max_length=MAX_PASSWORD)]
# A user's, machine's or station's name in a path.
Name = Annotated[str, Path(max_length=MAX_FIELD, pattern=NO_NUL)]
Filter = Annotated[str, Query(max_length=MAX_FIELD, pattern=NO_NUL)]

ADMIN_STRINGS: dict[str, dict[str, str]] = {
    "vi": {
        "admin_nav_label": "Các trang quản trị",
        "admin_nav_users": "Người dùng",
        "admin_nav_stations": "Trạm",
        "admin_nav_tokens": "Token truy cập",
        "admin_nav_audit": "Nhật ký thao tác",
        "users_title": "Người dùng",
        "col_name": "Tên",
        "col_role": "Vai trò",
        "col_state": "Trạng thái",
        "col_created": "Ngày tạo",
        "col_actions": "Thao tác",
        "state_active": "đang hoạt động",
        "state_disabled": "đã khoá",
        "role_viewer": "xem",
        "role_officer": "trực ban",
        "role_commander": "chỉ huy",
        "role_admin": "quản trị",
        "you": "(bạn)",
        "change_role": "Đổi vai trò",
        "disable": "Khoá",
        "enable": "Mở khoá",
        "set_password": "Đặt mật khẩu mới",
        "new_password": "Mật khẩu mới",
        "password_again": "Nhập lại mật khẩu",
        "add_user": "Thêm người dùng",
        "user_name": "Tên đăng nhập",
        "password": "Mật khẩu",
        "password_hint": "Ít nhất 8 ký tự.",
        "add": "Thêm",
        "save": "Lưu",
        "no_users": "Chưa có người dùng nào.",
        "passwords_differ": "password: hai lần nhập mật khẩu không giống nhau",
        "self_demote": "Bạn không thể tự hạ vai trò của mình: văn phòng có thể không còn ai "
        "quản trị. Hãy nhờ một quản trị viên khác.",
        "self_disable": "Bạn không thể tự khoá tài khoản của mình: văn phòng có thể không còn "
        "ai quản trị. Hãy nhờ một quản trị viên khác.",
        "done_user_added": "Đã thêm người dùng {subject}.",
        "done_role_changed": "Đã đổi vai trò của {subject}; các phiên đăng nhập của họ đã "
        "kết thúc.",
        "done_user_disabled": "Đã khoá {subject}; các phiên đăng nhập của họ đã kết thúc.",
        "done_user_enabled": "Đã mở khoá {subject}.",
        "done_password_set": "Đã đặt mật khẩu mới cho {subject}; các phiên đăng nhập cũ đã kết "
        "thúc.",
        "stations_title": "Trạm quan trắc",
        "col_station_id": "Mã trạm",
        "col_station_name": "Tên trạm",
        "col_district": "Quận/huyện",
        "col_position": "Vĩ độ, kinh độ",
        "col_probe": "Đầu đo",
        "col_interval": "Chu kỳ (s)",
        "col_push_token": "Token gửi số liệu",
        "has_token": "có",
        "no_token": "không",
        "edit": "Sửa",
        "no_stations": "Chưa có trạm nào.",
        "import_title": "Nhập danh sách trạm từ tệp CSV",
        "import_hint": "Cột bắt buộc: station_id, name, lat, lon. Trạm đã có thì được cập "
        "nhật. Chỉ cần một dòng sai là cả tệp không được nhập.",
        "csv_file": "Tệp CSV (UTF-8)",
        "import": "Nhập",
        "done_stations_imported": "Đã nhập {subject} trạm.",
        "done_station_saved": "Đã lưu trạm {subject}.",
        "station_title": "Sửa trạm {id}",
        "station_missing": "Không có trạm {id}.",
        "lat": "Vĩ độ (WGS 84)",
        "lon": "Kinh độ (WGS 84)",
        "back_to_stations": "← Danh sách trạm",
        "tokens_title": "Token truy cập",
        "col_kind": "Loại",
        "kind_station": "trạm (gửi số liệu)",
        "kind_api": "API (phần mềm)",
        "col_token_name": "Trạm / tên",
        "col_detail": "Vai trò / ghi chú",
        "col_created_by": "Người cấp",
        "col_issued": "Cấp lúc",
        "token_live": "còn hiệu lực",
        "token_revoked": "đã thu hồi {time}",
        "revoke": "Thu hồi",
        "revoke_hint": "Thu hồi mọi token còn hiệu lực của tên này",
        "no_tokens": "Chưa cấp token nào.",
        "issue_station_title": "Cấp token cho trạm gửi số liệu qua HTTP",
        "issue_api_title": "Cấp token API cho phần mềm",
        "station": "Trạm",
        "label": "Ghi chú",
        "machine_name": "Tên phần mềm / tích hợp",
        "issue": "Cấp token",
        "token_issued_title": "Token mới",
        "token_for_station": "Token gửi số liệu của trạm {subject} (POST /api/v1/readings):",
        "token_for_api": "Token API «{subject}», vai trò {role}:",
        "token_once": "Hãy sao chép ngay: token chỉ hiển thị một lần này và không thể xem lại. "
        "Nếu làm mất, hãy thu hồi và cấp token mới.",
        "token_usage": "Gửi kèm trong tiêu đề HTTP: Authorization: Bearer <token>",
        "back_to_tokens": "← Danh sách token",
        "done_token_revoked": "Đã thu hồi token của {subject}.",
        "audit_title": "Nhật ký thao tác",
        "col_at": "Thời gian",
        "col_actor": "Người thực hiện",
        "col_action": "Thao tác",
        "col_target": "Đối tượng",
        "col_outcome": "Kết quả",
        "col_source": "Từ địa chỉ",
        "col_details": "Chi tiết",
        "outcome_ok": "thành công",
        "outcome_refused": "bị từ chối",
        "outcome_error": "lỗi",
        "audit_filters": "Lọc",
        "filter_actor": "Người thực hiện",
        "filter_action": "Thao tác",
        "filter_since": "Từ lúc (giờ {zone})",
        "filter": "Lọc",
        "clear_filters": "Bỏ lọc",
        "older": "Cũ hơn →",
        "newest": "← Mới nhất",
        "no_entries": "Không có mục nào.",
    },
    "en": {
        "admin_nav_label": "Administration pages",
        "admin_nav_users": "Users",
        "admin_nav_stations": "Stations",
        "admin_nav_tokens": "Access tokens",
        "admin_nav_audit": "Audit log",
        "users_title": "Users",
        "col_name": "Name",
        "col_role": "Role",
        "col_state": "State",
        "col_created": "Created",
        "col_actions": "Actions",
        "state_active": "active",
        "state_disabled": "disabled",
        "role_viewer": "viewer",
        "role_officer": "officer",
        "role_commander": "commander",
        "role_admin": "admin",
        "you": "(you)",
        "change_role": "Change role",
        "disable": "Disable",
        "enable": "Enable",
        "set_password": "Set a new password",
        "new_password": "New password",
        "password_again": "Password again",
        "add_user": "Add a user",
        "user_name": "User name",
        "password": "Password",
        "password_hint": "At least 8 characters.",
        "add": "Add",
        "save": "Save",
        "no_users": "No users yet.",
        "passwords_differ": "password: the two entries differ",
        "self_demote": "You cannot demote yourself: the office could be left without an "
        "administrator. Ask another administrator.",
        "self_disable": "You cannot disable your own account: the office could be left without "
        "an administrator. Ask another administrator.",
        "done_user_added": "User {subject} added.",
        "done_role_changed": "Role of {subject} changed; their sessions have ended.",
        "done_user_disabled": "{subject} disabled; their sessions have ended.",
        "done_user_enabled": "{subject} enabled.",
        "done_password_set": "New password set for {subject}; their old sessions have ended.",
        "stations_title": "Stations",
        "col_station_id": "Station ID",
        "col_station_name": "Name",
        "col_district": "District",
        "col_position": "Latitude, longitude",
        "col_probe": "Probe",
        "col_interval": "Interval (s)",
        "col_push_token": "Push token",
        "has_token": "yes",
        "no_token": "no",
        "edit": "Edit",
        "no_stations": "No stations yet.",
        "import_title": "Import stations from a CSV file",
        "import_hint": "Required columns: station_id, name, lat, lon. Existing stations are "
        "updated. One bad row and nothing in the file is imported.",
        "csv_file": "CSV file (UTF-8)",
        "import": "Import",
        "done_stations_imported": "{subject} station(s) imported.",
        "done_station_saved": "Station {subject} saved.",
        "station_title": "Edit station {id}",
        "station_missing": "There is no station {id}.",
        "lat": "Latitude (WGS 84)",
        "lon": "Longitude (WGS 84)",
        "back_to_stations": "← Stations",
        "tokens_title": "Access tokens",
        "col_kind": "Kind",
        "kind_station": "station (push)",
        "kind_api": "API (software)",
        "col_token_name": "Station / name",
        "col_detail": "Role / label",
        "col_created_by": "Issued by",
        "col_issued": "Issued",
        "token_live": "live",
        "token_revoked": "revoked {time}",
        "revoke": "Revoke",
        "revoke_hint": "Revoke every live token of this name",
        "no_tokens": "No tokens issued yet.",
        "issue_station_title": "Issue a push token for a station (HTTP)",
        "issue_api_title": "Issue an API token for software",
        "station": "Station",
        "label": "Label",
        "machine_name": "Software / integration name",
        "issue": "Issue token",
        "token_issued_title": "New token",
        "token_for_station": "Push token of station {subject} (POST /api/v1/readings):",
        "token_for_api": "API token “{subject}”, role {role}:",
        "token_once": "Copy it now: it is shown this once and cannot be shown again. If it is "
        "lost, revoke it and issue a new one.",
        "token_usage": "Send it in the HTTP header: Authorization: Bearer <token>",
        "back_to_tokens": "← Tokens",
        "done_token_revoked": "Tokens of {subject} revoked.",
        "audit_title": "Audit log",
        "col_at": "Time",
        "col_actor": "Actor",
        "col_action": "Action",
        "col_target": "Target",
        "col_outcome": "Outcome",
        "col_source": "From",
        "col_details": "Details",
        "outcome_ok": "ok",
        "outcome_refused": "refused",
        "outcome_error": "error",
        "audit_filters": "Filters",
        "filter_actor": "Actor",
        "filter_action": "Action",
        "filter_since": "Since ({zone} time)",
        "filter": "Filter",
        "clear_filters": "Clear",
        "older": "Older →",
        "newest": "← Newest",
        "no_entries": "No entries.",
    },
}


class Refused(Exception):
    """A request the office's rules refuse (not bad input): answered with the form and 409."""


def _store(request: Request) -> Store:
    return request.app.state.store


def _words(request: Request) -> dict[str, str]:
    return ADMIN_STRINGS[page_language(request)]


def _zone(request: Request) -> str:
    return request.app.state.settings.site.timezone


def _local(moment: datetime | None, zone_name: str) -> str:
    """*moment* in the site's zone: administrators think in local time, as the CLI's users do."""
    if moment is None:
        return "–"
    local = times.ensure_utc(moment).astimezone(times.zone(zone_name))
    return local.strftime("%Y-%m-%d %H:%M:%S")


def _note(request: Request, **details: Any) -> None:
    """Add *details* to the audit entry the middleware writes for this request."""
    request.state.audit = {**(getattr(request.state, "audit", None) or {}), **details}


def _flash(request: Request) -> str | None:
    """The message a redirect asked for: a known key only, so a link cannot show any text."""
    done = request.query_params.get("done", "")
    template = _words(request).get(f"done_{done}") if done else None
    if template is None:
        return None
    return template.replace("{subject}", request.query_params.get("subject", "")[:200])


def _back(request: Request, page: str, done: str, subject: str) -> RedirectResponse:
    """303 to *page* with the message *done* about *subject* (never a secret)."""
    query = urlencode({"done": done, "subject": subject})
    target = f"{root_path(request)}/admin/{page}?{query}"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


def _page(
    request: Request,
    template: str,
    section: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    full = {"section": section, "flash": _flash(request), "error": None, "form": {}, **context}
    return render(request, template, full, strings=ADMIN_STRINGS, status_code=status_code)


@router.get("", response_class=RedirectResponse)
def admin_home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{root_path(request)}/admin/users", status.HTTP_303_SEE_OTHER)


# -- users -------------------------------------------------------------------------------------


def _users(
    request: Request,
    admin: User,
    status_code: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    zone = _zone(request)
    rows = [
        {"user": user, "created": _local(user.created_at, zone), "me": user.name == admin.name}
        for user in list_users(_store(request))
    ]
    context = {"rows": rows, "roles": ROLES, "error": error, "form": form or {}}
    return _page(request, "admin_users.html", "users", context, status_code)


def _user_refused(request: Request, admin: User, exc: Exception) -> HTMLResponse:
    code = status.HTTP_409_CONFLICT if isinstance(exc, Refused) else 422
    return _users(request, admin, code, str(exc))


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, admin: Admin) -> HTMLResponse:
    return _users(request, admin)


@router.post("/users")
def user_add(
    request: Request,
    admin: Admin,
    csrf_token: CsrfField = "",
    name: Text = "",
    role: Text = "",
    password: Secret = "",
    password_again: Secret = "",
) -> Response:
    csrf.check(request, csrf_token)
    name = name.strip()
    try:
        check_name(name)
        checked = Role.parse(role)
        check_password(password)
        if password != password_again:
            raise InputError(_words(request)["passwords_differ"])
        user = add_user(_store(request), name, checked, password)
    except InputError as exc:
        return _users(request, admin, 422, str(exc), {"name": name, "role": role})
    _note(request, user=user.name, role=user.role.value)
    return _back(request, "users", "user_added", user.name)


@router.post("/users/{name}/role")
def user_role(
    request: Request, name: Name, admin: Admin, csrf_token: CsrfField = "", role: Text = ""
) -> Response:
    csrf.check(request, csrf_token)
    store = _store(request)
    try:
        checked = Role.parse(role)
        if name == admin.name and not checked.at_least(Role.ADMIN):
            raise Refused(_words(request)["self_demote"])
        before = get_user(store, name)
        user = set_role(store, name, checked)
    except (InputError, Refused) as exc:
        return _user_refused(request, admin, exc)
    _note(request, role=user.role.value, was=before.role.value if before else None)
    return _back(request, "users", "role_changed", user.name)


def _set_disabled(request: Request, name: str, admin: User, disabled: bool) -> Response:
    try:
        if disabled and name == admin.name:
            raise Refused(_words(request)["self_disable"])
        user = set_disabled(_store(request), name, disabled)
    except (InputError, Refused) as exc:
        return _user_refused(request, admin, exc)
    _note(request, disabled=disabled)
    return _back(request, "users", "user_disabled" if disabled else "user_enabled", user.name)


@router.post("/users/{name}/disable")
def user_disable(
    request: Request, name: Name, admin: Admin, csrf_token: CsrfField = ""
) -> Response:
    csrf.check(request, csrf_token)
    return _set_disabled(request, name, admin, True)


@router.post("/users/{name}/enable")
def user_enable(request: Request, name: Name, admin: Admin, csrf_token: CsrfField = "") -> Response:
    csrf.check(request, csrf_token)
    return _set_disabled(request, name, admin, False)


@router.post("/users/{name}/password")
def user_password(
    request: Request,
    name: Name,
    admin: Admin,
    csrf_token: CsrfField = "",
    password: Secret = "",
    password_again: Secret = "",
) -> Response:
    """A new password ends every session of the user; an admin's own browser signs in anew."""
    csrf.check(request, csrf_token)
    try:
        check_password(password)
        if password != password_again:
            raise InputError(_words(request)["passwords_differ"])
        set_password(_store(request), name, password)
    except InputError as exc:
        return _user_refused(request, admin, exc)
    response = _back(request, "users", "password_set", name)
    if name == admin.name and getattr(request.state, "auth", None) == "session":
        sessions.start(request, response, admin)
    return response


# -- stations ----------------------------------------------------------------------------------


def _live_station_tokens(store: Store) -> set[str]:
    return {
        row["name"]
        for row in api_tokens.listing(store)
        if row["kind"] == "station" and row["revoked_at"] is None
    }


def _stations(request: Request, status_code: int = 200, error: str | None = None) -> HTMLResponse:
    store = _store(request)
    context = {
        "stations": store.stations(),
        "with_token": _live_station_tokens(store),
        "error": error,
    }
    return _page(request, "admin_stations.html", "stations", context, status_code)


@router.get("/stations", response_class=HTMLResponse)
def stations_page(request: Request) -> HTMLResponse:
    return _stations(request)


def _uploaded_stations(upload: UploadFile | None) -> tuple[str, list[Station]]:
    """The stations of an uploaded CSV, under the rules of ``radmon stations import``.

    ``read_stations_csv`` reads a path, so the upload goes to a private temporary file; its
    messages then name the uploaded file's name instead of that path.
    """
    if upload is None or not upload.filename:
        raise InputError("file: choose a stations CSV file")
    shown = FilePath(upload.filename.replace("\x00", "")).name[:100] or "stations.csv"
    data = upload.file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InputError(f"{shown}: larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not UTF-8 text (byte {exc.start + 1})") from None
    with tempfile.TemporaryDirectory(prefix="radmon-import-") as folder:
        path = FilePath(folder) / "stations.csv"
        path.write_bytes(data)
        try:
            return shown, read_stations_csv(path)
        except InputError as exc:
            raise InputError(str(exc).replace(str(path), shown)) from None
        except csv.Error as exc:
            raise InputError(f"{shown}: not a CSV file: {exc}") from None


@router.post("/stations/import")
def stations_import(
    request: Request,
    csrf_token: CsrfField = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    csrf.check(request, csrf_token)
    try:
        shown, parsed = _uploaded_stations(file)
    except InputError as exc:
        return _stations(request, 422, str(exc))
    count = _store(request).upsert_stations(parsed)
    request.app.state.stations.reload()  # HTTP push knows the new stations at once
    _note(request, file=shown, stations=count)
    return _back(request, "stations", "stations_imported", str(count))


def _station_page(
    request: Request,
    station_id: str,
    station: Station | None,
    status_code: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    if station is None:
        status_code = status.HTTP_404_NOT_FOUND
    if form is None and station is not None:
        form = {
            "name": station.name,
            "district": station.district or "",
            "lat": repr(station.lat),
            "lon": repr(station.lon),
        }
    context = {"station_id": station_id, "station": station, "error": error, "form": form or {}}
    return _page(request, "admin_station.html", "stations", context, status_code)


@router.get("/stations/{station_id}/edit", response_class=HTMLResponse)
def station_page(request: Request, station_id: Name) -> HTMLResponse:
    return _station_page(request, station_id, _store(request).station(station_id))


@router.post("/stations/{station_id}/edit")
def station_save(
    request: Request,
    station_id: Name,
    csrf_token: CsrfField = "",
    name: Text = "",
    district: Text = "",
    lat: Text = "",
    lon: Text = "",
) -> Response:
    """Change what a person may correct by hand; the probe's settings come from the CSV."""
    csrf.check(request, csrf_token)
    store = _store(request)
    station = store.station(station_id)
    if station is None:
        return _station_page(request, station_id, None)
    form = {"name": name, "district": district, "lat": lat, "lon": lon}
    values = {
        **station.model_dump(),
        "name": name.strip(),
        "district": district.strip() or None,
        "lat": lat.strip(),
        "lon": lon.strip(),
    }
    try:
        updated = Station(**values)
    except ValidationError as exc:
        field, message, got = first_problem(exc, "station")
        error = f"field {field!r}: {message} (got {got!r})"
        return _station_page(request, station_id, station, 422, error, form)
    store.upsert_stations([updated])
    request.app.state.stations.reload()
    fields = ("name", "district", "lat", "lon")
    _note(request, changed=[k for k in fields if getattr(updated, k) != getattr(station, k)])
    return _back(request, "stations", "station_saved", station_id)


# -- tokens ------------------------------------------------------------------------------------


def _tokens(request: Request, status_code: int = 200, error: str | None = None) -> HTMLResponse:
    store = _store(request)
    zone = _zone(request)
    rows = [
        {
            **row,
            "created": _local(row["created_at"], zone),
            "revoked": _local(row["revoked_at"], zone) if row["revoked_at"] else None,
        }
        for row in api_tokens.listing(store)
    ]
    context = {"rows": rows, "stations": store.stations(), "roles": ROLES, "error": error}
    return _page(request, "admin_tokens.html", "tokens", context, status_code)


def _issued(request: Request, kind: str, subject: str, token: str, role: str = "") -> HTMLResponse:
    """The one page that ever shows the token: the answer to the POST that made it."""
    context = {"kind": kind, "subject": subject, "token": token, "role": role}
    return _page(request, "admin_token.html", "tokens", context)


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request) -> HTMLResponse:
    return _tokens(request)


@router.post("/tokens/station")
def token_station_issue(
    request: Request,
    csrf_token: CsrfField = "",
    station_id: Text = "",
    label: Text = "",
) -> Response:
    csrf.check(request, csrf_token)
    store = _store(request)
    station_id = station_id.strip()
    if store.station(station_id) is None:
        error = f"station_id {station_id!r}: no such station; import it first"
        return _tokens(request, 422, error)
    label = label.strip()
    token = store.issue_station_token(station_id, label)
    _note(request, kind="station", station_id=station_id, label=label)
    return _issued(request, "station", station_id, token)


@router.post("/tokens/api")
def token_api_issue(
    request: Request, admin: Admin, csrf_token: CsrfField = "", name: Text = "", role: Text = ""
) -> Response:
    csrf.check(request, csrf_token)
    name = name.strip()
    try:
        checked = Role.parse(role)
        token = api_tokens.issue(_store(request), name, checked, admin.name)
    except InputError as exc:
        return _tokens(request, 422, str(exc))
    _note(request, kind="api", name=name, role=checked.value)
    return _issued(request, "api", name, token, checked.value)


@router.post("/tokens/station/{station_id}/revoke")
def token_station_revoke(
    request: Request, station_id: Name, csrf_token: CsrfField = ""
) -> Response:
    csrf.check(request, csrf_token)
    count = _store(request).revoke_station_tokens(station_id)
    if count == 0:
        error = f"station_id {station_id!r}: no live push token to revoke"
        return _tokens(request, 422, error)
    _note(request, kind="station", revoked=count)
    return _back(request, "tokens", "token_revoked", station_id)


@router.post("/tokens/api/{name}/revoke")
def token_api_revoke(request: Request, name: Name, csrf_token: CsrfField = "") -> Response:
    csrf.check(request, csrf_token)
    try:
        count = api_tokens.revoke(_store(request), name)
    except InputError as exc:
        return _tokens(request, 422, str(exc))
    _note(request, kind="api", revoked=count)
    return _back(request, "tokens", "token_revoked", name)


# -- audit log ---------------------------------------------------------------------------------


def parse_since(text: str, zone_name: str) -> datetime | None:
    """A zoned ISO time, or a local one (a ``datetime-local`` field) in the site's zone."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"since {text!r}: expected a date and time such as 2026-01-10T08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=times.zone(zone_name))
    return moment.astimezone(UTC)


def known_actions(request: Request) -> list[str]:
    """The actions the middleware can record, for the filter's suggestions."""
    found = {"sign-in", "sign-out"}
    for route in request.app.routes:
        path = getattr(route, "path", "")
        for method in getattr(route, "methods", None) or ():
            if method in csrf.UNSAFE_METHODS and path not in ("/login", "/logout"):
                found.add(f"{method} {path}")
    return sorted(found)


def _details(entry: audit.AuditEntry) -> str:
    shown = {k: v for k, v in entry.details.items() if k != "user_agent" and v is not None}
    return "; ".join(f"{k}: {v}" for k, v in shown.items())


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    actor: Filter = "",
    action: Filter = "",
    since: Annotated[str, Query(max_length=100, pattern=NO_NUL)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> HTMLResponse:
    """The log newest first; ``before`` (the last id seen) pages back without repeats."""
    zone = _zone(request)
    filters = {"actor": actor.strip(), "action": action.strip(), "since": since.strip()}
    kept = {k: v for k, v in filters.items() if v}  # what the paging links carry on
    error, entries, older = None, [], None
    try:
        since_at = parse_since(filters["since"], zone)
    except InputError as exc:
        error, since_at = str(exc), None
    if error is None:
        entries = audit.entries(
            _store(request),
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            since=since_at,
            before_id=before,
            limit=AUDIT_PAGE + 1,
        )
        if len(entries) > AUDIT_PAGE:
            entries = entries[:AUDIT_PAGE]
            older = "?" + urlencode({**kept, "before": entries[-1].id})
    rows = [
        {
            "entry": entry,
            "at": _local(entry.at, zone),
            "details": _details(entry),
            "agent": str(entry.details.get("user_agent") or ""),
        }
        for entry in entries
    ]
    context = {
        "rows": rows,
        "filters": filters,
        "older": older,
        "newest": ("?" + urlencode(kept)) if before is not None else None,
        "actions": known_actions(request),
        "zone": zone,
        "error": error,
    }
    return _page(request, "admin_audit.html", "audit", context, 422 if error else 200)
