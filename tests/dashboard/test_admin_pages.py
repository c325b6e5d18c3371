"""The administrator's pages and ``/api/v1/audit``, through real sign-ins on a real SQLite store.

Each person is a TestClient of their own (their own cookies), signed in through the ``/login``
form; forms are posted with the CSRF token of the page they were on, as a browser does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from dashboard import create_app
from radmon import api_tokens, audit, users
from radmon.config import Settings
from radmon.store import Store
from radmon.users import add_user, get_user, list_users
from tests.dashboard.conftest import XSS_NAME, TestClient

PASSWORD = "correct horse"
ADMIN, OTHER_ADMIN, VIEWER, OFFICER = "an", "binh", "viet", "olga"


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest: these tests are about administration, not about hashing."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def office(seeded: Store) -> Store:
    for name, role in [
        (ADMIN, "admin"),
        (OTHER_ADMIN, "admin"),
        (VIEWER, "viewer"),
        (OFFICER, "officer"),
    ]:
        add_user(seeded, name, role, PASSWORD)
    return seeded


@pytest.fixture
def app(office: Store, settings: Settings) -> FastAPI:
    return create_app(office, settings)


@pytest.fixture
def people(app: FastAPI) -> Iterator[dict[str, TestClient]]:
    """One browser per person, none signed in yet; ``signed_in`` signs them in."""
    clients: dict[str, TestClient] = {}
    yield clients
    for client in clients.values():
        client.close()


def browser(app: FastAPI, people: dict[str, TestClient], key: str) -> TestClient:
    people[key] = TestClient(app)
    return people[key]


def page_token(html: str) -> str:
    """The CSRF token a page carries (its meta tag; the forms carry the same one)."""
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def admin(app: FastAPI, people: dict[str, TestClient]) -> TestClient:
    return sign_in(browser(app, people, ADMIN), ADMIN)


def post(client: TestClient, path: str, data: dict | None = None, **kwargs) -> object:
    """Submit a form of *path*'s page the way a browser does: with that page's token."""
    token = page_token(client.get("/login").text)
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def no_redirect(client: TestClient, path: str, data: dict | None = None, **kwargs) -> object:
    return post(client, path, data, follow_redirects=False, **kwargs)


def basic(name: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def signed_in(client: TestClient) -> bool:
    """Whether this browser's session still opens a page (else the login redirect)."""
    return client.get("/alarms", follow_redirects=False).status_code == 200


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def csv_file(rows: list[str], name: str = "stations.csv") -> dict:
    body = "\n".join(["station_id,name,lat,lon,district", *rows]) + "\n"
    return {"file": (name, body.encode(), "text/csv")}


GET_PAGES = [
    "/admin",
    "/admin/users",
    "/admin/stations",
    "/admin/stations/HN-001/edit",
    "/admin/tokens",
    "/admin/audit",
]
POSTS = [
    ("/admin/users", {"name": "mallory", "role": "admin", "password": "x" * 10}),
    ("/admin/users/viet/role", {"role": "admin"}),
    ("/admin/users/an/disable", {}),
    ("/admin/users/viet/enable", {}),
    ("/admin/users/an/password", {"password": "y" * 10, "password_again": "y" * 10}),
    ("/admin/stations/import", {}),
    ("/admin/stations/HN-001/edit", {"name": "x", "lat": "1", "lon": "2"}),
    ("/admin/tokens/station", {"station_id": "HN-001"}),
    ("/admin/tokens/api", {"name": "robot", "role": "admin"}),
    ("/admin/tokens/station/HN-001/revoke", {}),
    ("/admin/tokens/api/robot/revoke", {}),
]


def snapshot(store: Store) -> tuple:
    """Everything an admin form can change."""
    users = [(u.name, u.role, u.disabled) for u in list_users(store)]
    tokens = [(r["kind"], r["name"], r["revoked_at"]) for r in api_tokens.listing(store)]
    return users, store.stations(), tokens


# -- who may come in ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_PAGES)
def test_anonymous_visitors_are_sent_to_login(app: FastAPI, people, path: str) -> None:
    answer = browser(app, people, "anon").get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("path", "data"), POSTS)
def test_anonymous_posts_are_sent_to_login_and_change_nothing(
    app: FastAPI, office: Store, people, path: str, data: dict
) -> None:
    before = snapshot(office)
    answer = no_redirect(browser(app, people, "anon"), path, data)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    assert snapshot(office) == before


@pytest.mark.parametrize("name", [VIEWER, OFFICER])
def test_viewers_and_officers_get_403_on_every_admin_page_and_post(
    app: FastAPI, office: Store, people, name: str
) -> None:
    client = sign_in(browser(app, people, name), name)
    for path in GET_PAGES:
        assert client.get(path, follow_redirects=False).status_code == 403, path
    before = snapshot(office)
    for path, data in POSTS:
        assert no_redirect(client, path, data).status_code == 403, path
    assert snapshot(office) == before
    assert "/admin/users" not in client.get("/alarms").text  # no admin link in their header


def test_the_admin_link_shows_for_admins(admin: TestClient) -> None:
    assert 'href="/admin/users"' in admin.get("/alarms").text


@pytest.mark.parametrize("token", [None, "", "forged-token", "other-browser"])
def test_posts_without_the_page_token_are_refused_and_change_nothing(
    app: FastAPI, office: Store, admin: TestClient, people, token: str | None
) -> None:
    if token == "other-browser":  # a real token, but of another person's page
        other = sign_in(browser(app, people, OTHER_ADMIN), OTHER_ADMIN)
        token = page_token(other.get("/admin/users").text)
    before = snapshot(office)
    for path, data in POSTS:
        form = dict(data) if token is None else {"csrf_token": token, **data}
        answer = admin.post(path, data=form, follow_redirects=False)
        assert answer.status_code == 403, path
    assert snapshot(office) == before


def test_a_post_from_another_site_is_refused(office: Store, admin: TestClient) -> None:
    token = page_token(admin.get("/admin/users").text)
    answer = admin.post(
        "/admin/users/viet/role",
        data={"csrf_token": token, "role": "admin"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert get_user(office, VIEWER).role == "viewer"


# -- users -------------------------------------------------------------------------------------


def test_an_admin_adds_a_user_who_can_then_sign_in(
    app: FastAPI, office: Store, admin: TestClient, people
) -> None:
    data = {"name": "chi", "role": "officer", "password": "mật khẩu mới", "password_again": ""}
    data["password_again"] = data["password"]
    answer = no_redirect(admin, "/admin/users", data)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/users?done=user_added&subject=chi"
    page = admin.get(answer.headers["location"])
    assert "Đã thêm người dùng chi." in page.text
    assert 'data-user="chi"' in page.text
    assert get_user(office, "chi").role == "officer"
    assert signed_in(sign_in(browser(app, people, "chi"), "chi", "mật khẩu mới"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "chi", "password": "long enough", "password_again": "different!"}, "password"),
        ({"name": "chi", "password": "short", "password_again": "short"}, "password: at least"),
        ({"name": "bad name", "password": "long enough"}, "name 'bad name'"),
        ({"name": VIEWER, "password": "long enough", "password_again": "long enough"}, "exists"),
        ({"name": "chi", "role": "root", "password": "long enough"}, "role 'root'"),
    ],
)
def test_bad_user_input_shows_the_form_again_with_the_field(
    office: Store, admin: TestClient, data: dict, message: str
) -> None:
    before = snapshot(office)
    answer = post(admin, "/admin/users", {"role": "viewer", **data})
    assert answer.status_code == 422
    assert message in text_of(answer.text)
    assert 'id="add-user"' in answer.text
    assert snapshot(office) == before


def test_changing_a_role_ends_that_users_sessions(
    app: FastAPI, office: Store, admin: TestClient, people
) -> None:
    olga = sign_in(browser(app, people, OFFICER), OFFICER)
    assert signed_in(olga)
    answer = no_redirect(admin, "/admin/users/olga/role", {"role": "commander"})
    assert answer.status_code == 303
    assert get_user(office, OFFICER).role == "commander"
    assert not signed_in(olga)
    assert signed_in(sign_in(olga, OFFICER))  # signing in again gives the new role
    entry = audit.entries(office, action="POST /admin/users/{name}/role")[0]
    assert entry.actor == ADMIN and entry.target == "/admin/users/olga/role"
    assert entry.details["role"] == "commander" and entry.details["was"] == "officer"


def test_disabling_ends_sessions_and_sign_in_until_enabled(
    app: FastAPI, office: Store, admin: TestClient, people
) -> None:
    viet = sign_in(browser(app, people, VIEWER), VIEWER)
    assert no_redirect(admin, "/admin/users/viet/disable").status_code == 303
    assert get_user(office, VIEWER).disabled
    assert not signed_in(viet)
    refused = post(viet, "/login", {"name": VIEWER, "password": PASSWORD})
    assert refused.status_code == 401
    page = admin.get("/admin/users?lang=en").text
    assert re.search(r'data-user="viet" class="disabled"', page)
    assert no_redirect(admin, "/admin/users/viet/enable").status_code == 303
    assert signed_in(sign_in(viet, VIEWER))


def test_setting_a_password_replaces_the_old_one_and_ends_sessions(
    app: FastAPI, office: Store, admin: TestClient, people
) -> None:
    viet = sign_in(browser(app, people, VIEWER), VIEWER)
    new = {"password": "một mật khẩu mới", "password_again": "một mật khẩu mới"}
    assert no_redirect(admin, "/admin/users/viet/password", new).status_code == 303
    assert not signed_in(viet)
    assert post(viet, "/login", {"name": VIEWER, "password": PASSWORD}).status_code == 401
    assert signed_in(sign_in(viet, VIEWER, new["password"]))
    differ = post(admin, "/admin/users/viet/password", {**new, "password_again": "x" * 12})
    assert differ.status_code == 422


def test_an_admins_own_new_password_keeps_this_browser_signed_in(
    office: Store, admin: TestClient
) -> None:
    new = {"password": "another long one", "password_again": "another long one"}
    assert no_redirect(admin, f"/admin/users/{ADMIN}/password", new).status_code == 303
    assert admin.get("/admin/users", follow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    ("path", "data"),
    [(f"/admin/users/{ADMIN}/role", {"role": "commander"}), (f"/admin/users/{ADMIN}/disable", {})],
)
def test_an_admin_cannot_demote_or_disable_themselves(
    office: Store, admin: TestClient, path: str, data: dict
) -> None:
    answer = post(admin, path, data)
    assert answer.status_code == 409
    assert "Bạn không thể tự" in answer.text
    me = get_user(office, ADMIN)
    assert me.role == "admin" and not me.disabled
    assert signed_in(admin)


def test_another_admin_may_demote_an_admin(office: Store, admin: TestClient) -> None:
    assert no_redirect(admin, "/admin/users/binh/role", {"role": "viewer"}).status_code == 303
    assert get_user(office, OTHER_ADMIN).role == "viewer"


def test_unknown_users_are_named_in_the_message(admin: TestClient) -> None:
    answer = post(admin, "/admin/users/nobody/role", {"role": "viewer"})
    assert answer.status_code == 422
    assert "name 'nobody': no such user" in text_of(answer.text)


# -- stations ----------------------------------------------------------------------------------


def test_the_station_list_shows_stations_and_escapes_names(admin: TestClient) -> None:
    page = admin.get("/admin/stations").text
    assert XSS_NAME not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-station="HN-001"' in page and "Cầu Giấy" in page and "RM-10" in page
    assert "21.03000, 105.79000" in page
    tokens_page = admin.get("/admin/tokens").text
    assert XSS_NAME not in tokens_page


def test_a_csv_with_a_bad_row_changes_nothing_and_names_the_line(
    office: Store, admin: TestClient
) -> None:
    before = snapshot(office)
    rows = ["HN-001,Renamed,21.0,105.8,Ba Đình", "NEW-01,Fine,21.1,105.9,", "NEW-02,Bad,95,105,"]
    answer = post(admin, "/admin/stations/import", files=csv_file(rows, "province.csv"))
    assert answer.status_code == 422
    message = text_of(answer.text)
    assert "province.csv:4: field 'lat'" in message
    assert "radmon-import" not in answer.text  # the server's temporary path stays hidden
    assert snapshot(office) == before


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "file: choose a stations CSV file"),
        ({"file": ("s.csv", b"station_id,name\nA,b\n", "text/csv")}, "s.csv:1: missing"),
        ({"file": ("s.csv", "id\n\xe9".encode("latin-1"), "text/csv")}, "s.csv: not UTF-8"),
        (
            csv_file(["HN-9,One,21,105,", "HN-9,Two,21,105,"], "s.csv"),
            "s.csv:3: field 'station_id'",
        ),
    ],
)
def test_other_bad_uploads_are_refused_with_the_reason(
    office: Store, admin: TestClient, files: dict, message: str
) -> None:
    before = snapshot(office)
    answer = post(admin, "/admin/stations/import", files=files)
    assert answer.status_code == 422
    assert message in text_of(answer.text)
    assert snapshot(office) == before


def test_a_good_csv_upserts_every_station(office: Store, admin: TestClient) -> None:
    rows = ["HN-001,Renamed,21.0,105.8,Ba Đình", "NEW-01,Mới,21.1,105.9,Đông Anh"]
    answer = no_redirect(admin, "/admin/stations/import", files=csv_file(rows))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/stations?done=stations_imported&subject=2"
    assert office.station("HN-001").name == "Renamed"
    assert office.station("NEW-01").district == "Đông Anh"
    entry = audit.entries(office, action="POST /admin/stations/import")[0]
    assert entry.details["stations"] == 2 and entry.details["file"] == "stations.csv"


def test_editing_a_station_keeps_its_probe_settings(office: Store, admin: TestClient) -> None:
    form = admin.get("/admin/stations/HN-001/edit").text
    assert 'value="Hà Nội – Cầu Giấy"' in form
    data = {"name": "Cầu Giấy (mới)", "district": "", "lat": "21.04", "lon": "105.8"}
    assert no_redirect(admin, "/admin/stations/HN-001/edit", data).status_code == 303
    station = office.station("HN-001")
    assert (station.name, station.district, station.lat, station.lon) == (
        "Cầu Giấy (mới)",
        None,
        21.04,
        105.8,
    )
    assert station.probe_model == "RM-10" and station.interval_s == 600


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "lat": "91", "lon": "105"}, "field 'lat'"),
        ({"name": "x", "lat": "21", "lon": "east"}, "field 'lon'"),
        ({"name": "", "lat": "21", "lon": "105"}, "field 'name'"),
    ],
)
def test_bad_station_edits_show_the_form_again(
    office: Store, admin: TestClient, data: dict, field: str
) -> None:
    before = office.station("HN-001")
    answer = post(admin, "/admin/stations/HN-001/edit", data)
    assert answer.status_code == 422
    assert field in text_of(answer.text)
    assert office.station("HN-001") == before


def test_editing_an_unknown_station_is_404(admin: TestClient) -> None:
    assert admin.get("/admin/stations/NOPE/edit").status_code == 404
    assert post(admin, "/admin/stations/NOPE/edit", {"name": "x"}).status_code == 404


# -- tokens ------------------------------------------------------------------------------------


def new_token(html: str) -> str:
    return unescape(re.search(r'<code id="new-token" class="token">([^<]+)</code>', html).group(1))


def test_an_api_token_is_shown_once_and_reads_until_revoked(
    office: Store, admin: TestClient
) -> None:
    answer = no_redirect(admin, "/admin/tokens/api", {"name": "report-job", "role": "viewer"})
    assert answer.status_code == 200  # the answer itself, never a redirect that could carry it
    assert "location" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
    assert "không thể xem lại" in answer.text
    token = new_token(answer.text)
    assert token.startswith(api_tokens.PREFIX)
    bearer = {"Authorization": f"Bearer {token}"}
    reader = TestClient(admin.app)
    assert reader.get("/api/v1/stations", headers=bearer).status_code == 200
    listing = admin.get("/admin/tokens").text
    assert token not in listing and 'data-name="report-job"' in listing
    entries = audit.entries(office, action="POST /admin/tokens/api")
    assert token not in str([e.model_dump() for e in entries])
    assert entries[0].details["role"] == "viewer"
    assert no_redirect(admin, "/admin/tokens/api/report-job/revoke").status_code == 303
    assert reader.get("/api/v1/stations", headers=bearer).status_code == 401
    again = post(admin, "/admin/tokens/api/report-job/revoke")
    assert again.status_code == 422 and "no live API token" in text_of(again.text)


def test_a_viewer_api_token_cannot_reach_the_audit_log(admin: TestClient) -> None:
    token = new_token(post(admin, "/admin/tokens/api", {"name": "robot", "role": "viewer"}).text)
    bearer = {"Authorization": f"Bearer {token}"}
    assert TestClient(admin.app).get("/api/v1/audit", headers=bearer).status_code == 403


def test_a_station_token_pushes_readings_until_revoked(office: Store, admin: TestClient) -> None:
    answer = post(admin, "/admin/tokens/station", {"station_id": "HP-003", "label": "GSM modem"})
    assert answer.status_code == 200
    token = new_token(answer.text)
    assert "HP-003" in answer.text
    row = re.search(r'data-station="HP-003".*?</tr>', _stations(admin), re.S)[0]
    assert '<td class="push-token">có</td>' in row
    reading = {"time": datetime.now(UTC).isoformat(), "dose_rate": 0.11, "unit": "uSv/h"}
    station = TestClient(admin.app)
    bearer = {"Authorization": f"Bearer {token}"}
    pushed = station.post("/api/v1/readings", json=reading, headers=bearer)
    assert pushed.status_code == 200 and pushed.json()["accepted"] == 1
    assert no_redirect(admin, "/admin/tokens/station/HP-003/revoke").status_code == 303
    assert station.post("/api/v1/readings", json=reading, headers=bearer).status_code == 401
    row = re.search(r'data-station="HP-003".*?</tr>', _stations(admin), re.S)[0]
    assert '<td class="push-token">không</td>' in row


def _stations(client: TestClient) -> str:
    return client.get("/admin/stations").text


def test_a_token_for_an_unknown_station_is_refused(office: Store, admin: TestClient) -> None:
    answer = post(admin, "/admin/tokens/station", {"station_id": "NOPE"})
    assert answer.status_code == 422
    assert "station_id 'NOPE': no such station" in text_of(answer.text)
    assert api_tokens.listing(office) == []


# -- the audit log -----------------------------------------------------------------------------


def _some_acts(admin: TestClient) -> None:
    data = {"name": "chi", "role": "viewer", "password": "long enough", "password_again": ""}
    data["password_again"] = data["password"]
    no_redirect(admin, "/admin/users", data)
    no_redirect(admin, "/admin/users/chi/role", {"role": "officer"})
    admin.post("/admin/users/chi/disable", data={"csrf_token": "forged"})  # refused


def test_the_audit_page_and_api_list_the_acts_newest_first(
    office: Store, admin: TestClient
) -> None:
    _some_acts(admin)
    entries = admin.get("/api/v1/audit", params={"actor": ADMIN}).json()
    acts = [(e["action"], e["target"], e["outcome"]) for e in entries]
    assert acts[:4] == [
        ("POST /admin/users/{name}/disable", "/admin/users/chi/disable", "refused"),
        ("POST /admin/users/{name}/role", "/admin/users/chi/role", "ok"),
        ("POST /admin/users", "/admin/users", "ok"),
        ("sign-in", "", "ok"),
    ]
    assert all(e["source"] == "testclient" for e in entries)
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert entries[2]["details"]["role"] == "viewer" and entries[2]["details"]["user"] == "chi"

    page = admin.get("/admin/audit", params={"actor": ADMIN, "lang": "en"})
    assert page.status_code == 200
    rows = re.findall(r'<tr data-id="(\d+)" class="outcome-(\w+)">(.*?)</tr>', page.text, re.S)
    assert [int(r[0]) for r in rows] == [e["id"] for e in entries]
    first = text_of(rows[0][2])
    assert "an" in first and "/admin/users/chi/disable" in first and "refused" in first
    assert "testclient" in first


def test_audit_filters_by_action_and_since(office: Store, admin: TestClient) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    audit.record(office, "someone", "POST /admin/users", target="/admin/users", at=old)
    _some_acts(admin)
    found = admin.get("/api/v1/audit", params={"action": "POST /admin/users"}).json()
    assert [e["actor"] for e in found] == [ADMIN, "someone"]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recent = admin.get("/api/v1/audit", params={"action": "POST /admin/users", "since": since})
    assert [e["actor"] for e in recent.json()] == [ADMIN]
    assert admin.get("/api/v1/audit", params={"since": "2026-01-01T00:00"}).status_code == 422
    # the page takes the site's local time, as a datetime-local field sends it
    page = admin.get(
        "/admin/audit", params={"action": "POST /admin/users", "since": "2021-01-01T07:00"}
    )
    assert page.status_code == 200
    assert "someone" not in text_of(page.text)
    bad = admin.get("/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since 'yesterday'" in text_of(bad.text)


def test_paging_with_before_gives_every_entry_once(office: Store, admin: TestClient) -> None:
    for n in range(130):
        audit.record(office, f"cli-{n % 3}", "stations import", target=f"file-{n}.csv")
    everything = [e.id for e in audit.entries(office, limit=10_000)]
    seen, url = [], "/api/v1/audit?limit=7"
    while url:
        answer = admin.get(url)
        seen += [e["id"] for e in answer.json()]
        link = answer.headers.get("link")
        url = re.match(r'<([^>]+)>; rel="next"', link).group(1) if link else None
    assert seen == everything  # newest first, each once

    shown, url = [], "/admin/audit"
    while url:
        html = admin.get(url).text
        shown += [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]
        older = re.search(r'<a href="([^"]+)" rel="next"', html)
        url = unescape(older.group(1)) if older else None
    assert shown == everything[: len(shown)] and len(shown) == len(everything)


def test_the_audit_api_is_for_admins_only(admin: TestClient, app: FastAPI, people) -> None:
    outsider = browser(app, people, "outsider")
    assert outsider.get("/api/v1/audit").status_code == 401
    assert outsider.get("/api/v1/audit", headers=basic(OFFICER)).status_code == 403
    assert outsider.get("/api/v1/audit", headers=basic(ADMIN)).status_code == 200
    assert admin.get("/api/v1/audit").status_code == 200


def test_nul_bytes_are_refused_before_the_database(admin: TestClient) -> None:
    """PostgreSQL cannot compare or store text with NUL: a 422 here, never a 500 there."""
    assert admin.get("/api/v1/audit", params={"actor": "a\x00b"}).status_code == 422
    assert admin.get("/admin/audit", params={"action": "a\x00b"}).status_code == 422
    assert post(admin, "/admin/tokens/station", {"station_id": "HN\x00"}).status_code == 422
    assert post(admin, "/admin/users/a%00b/role", {"role": "viewer"}).status_code == 422


def test_the_audit_api_is_documented(admin: TestClient) -> None:
    schema = admin.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/audit"]["get"]
    assert operation["tags"] == ["audit"]
    params = {p["name"] for p in operation["parameters"]}
    assert {"actor", "action", "since", "before", "limit"} <= params
    assert not [p for p in schema["paths"] if p.startswith("/admin")]
