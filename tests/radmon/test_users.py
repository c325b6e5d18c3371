"""Users and roles on both backends, and ``radmon users`` as its sub-app runs it."""

from __future__ import annotations

from datetime import UTC

import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select
from typer.testing import CliRunner

from radmon import users
from radmon.cli_users import users_app
from radmon.errors import InputError
from radmon.store import Store
from radmon.store.schema import users as users_table
from radmon.users import (
    Role,
    add_user,
    authenticate,
    get_user,
    list_users,
    set_disabled,
)

PASSWORD = "correct horse"


def stored_hash(store: Store, name: str) -> str:
    with store.engine.connect() as conn:
        query = select(users_table.c.password_hash).where(users_table.c.name == name)
        return conn.execute(query).scalar_one()


# -- roles -----------------------------------------------------------------------------------


def test_each_role_includes_the_ones_before() -> None:
    order = [Role.VIEWER, Role.OFFICER, Role.COMMANDER, Role.ADMIN]
    for i, role in enumerate(order):
        for j, other in enumerate(order):
            assert role.at_least(other) is (i >= j), (role, other)
    # a StrEnum's own '<' compares spelling ('admin' < 'viewer'); at_least must not
    assert not Role.VIEWER.at_least("admin")
    assert Role.ADMIN.at_least("viewer")


def test_roles_parse_any_case_and_name_the_field() -> None:
    assert Role.parse(" Commander ") is Role.COMMANDER
    with pytest.raises(InputError, match=r"^role 'boss': expected one of viewer, officer"):
        Role.parse("boss")


# -- the store of users (SQLite and PostgreSQL) -------------------------------------------------


def test_add_then_authenticate(store: Store) -> None:
    added = add_user(store, "lan.nguyen@hanoi", "officer", PASSWORD)
    assert added.role is Role.OFFICER and not added.disabled
    assert added.created_at.tzinfo is not None

    user = authenticate(store, "lan.nguyen@hanoi", PASSWORD)
    assert user == added
    assert user.created_at.tzinfo == UTC

    assert authenticate(store, "lan.nguyen@hanoi", PASSWORD + "!") is None
    assert authenticate(store, "lan.nguyen@hanoi", "") is None
    assert authenticate(store, "nobody", PASSWORD) is None
    assert authenticate(store, "not a valid name:", PASSWORD) is None


def test_only_an_argon2id_hash_is_stored(store: Store) -> None:
    add_user(store, "an", "viewer", PASSWORD)
    stored = stored_hash(store, "an")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_passwords_may_be_vietnamese(store: Store) -> None:
    add_user(store, "hoa", "viewer", "mật khẩu của tôi")
    assert authenticate(store, "hoa", "mật khẩu của tôi") is not None
    assert authenticate(store, "hoa", "mat khau cua toi") is None


def test_a_taken_name_is_refused_and_the_first_user_kept(store: Store) -> None:
    add_user(store, "minh", "admin", PASSWORD)
    with pytest.raises(InputError, match=r"^name 'minh': a user with this name already exists"):
        add_user(store, "minh", "viewer", "another password")
    assert get_user(store, "minh").role is Role.ADMIN
    assert authenticate(store, "minh", PASSWORD) is not None
    with pytest.raises(InputError, match=r"^name 'Minh': the user 'minh' exists"):
        add_user(store, "Minh", "viewer", "another password")  # one person to a reader
    assert [u.name for u in list_users(store)] == ["minh"]


@pytest.mark.parametrize(
    ("name", "role", "password", "field"),
    [
        ("duc", "boss", PASSWORD, "role"),
        ("duc", "", PASSWORD, "role"),
        ("", "viewer", PASSWORD, "name"),
        ("-duc", "viewer", PASSWORD, "name"),
        ("duc nguyen", "viewer", PASSWORD, "name"),
        ("duc:x", "viewer", PASSWORD, "name"),  # HTTP Basic could not carry it
        ("đức", "viewer", PASSWORD, "name"),
        ("d" * 65, "viewer", PASSWORD, "name"),
        ("duc", "viewer", "7 chars", "password"),
        ("duc", "viewer", "", "password"),
        ("duc", "viewer", " " * 12, "password"),  # blanks only
        ("duc", "viewer", "x" * 1025, "password"),  # longer than the sign-in form takes
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    store: Store, name: str, role: str, password: str, field: str
) -> None:
    with pytest.raises(InputError, match=rf"^{field}\b"):
        add_user(store, name, role, password)
    assert list_users(store) == []


def test_the_longest_name_and_shortest_password_are_accepted(store: Store) -> None:
    name = "d" * 64
    add_user(store, name, "viewer", "8 chars!")
    assert authenticate(store, name, "8 chars!") is not None
    add_user(store, "long", "viewer", "x" * 1024)
    assert authenticate(store, "long", "x" * 1024) is not None


def test_a_disabled_user_cannot_sign_in_until_enabled(store: Store) -> None:
    add_user(store, "tuan", "commander", PASSWORD)
    assert set_disabled(store, "tuan").disabled
    assert get_user(store, "tuan").disabled
    assert authenticate(store, "tuan", PASSWORD) is None
    assert not set_disabled(store, "tuan", False).disabled
    assert authenticate(store, "tuan", PASSWORD).role is Role.COMMANDER
    with pytest.raises(InputError, match=r"^name 'ghost': no such user"):
        set_disabled(store, "ghost")


def test_list_and_get(store: Store) -> None:
    add_user(store, "viet", "viewer", PASSWORD)
    add_user(store, "an", "admin", PASSWORD)
    listed = list_users(store)
    assert [(u.name, u.role) for u in listed] == [("an", Role.ADMIN), ("viet", Role.VIEWER)]
    assert all(u.created_at.tzinfo is not None for u in listed)
    assert "password_hash" not in listed[0].model_dump()
    assert get_user(store, "an") == listed[0]
    assert get_user(store, "nobody") is None


def test_an_old_hash_is_replaced_on_sign_in(store: Store) -> None:
    add_user(store, "old", "viewer", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with store.transaction() as conn:
        conn.execute(
            users_table.update().where(users_table.c.name == "old").values(password_hash=weak)
        )
    assert authenticate(store, "old", PASSWORD) is not None
    fresh = stored_hash(store, "old")
    assert fresh != weak
    assert not users._hasher.check_needs_rehash(fresh)
    assert authenticate(store, "old", PASSWORD) is not None


class CountingHasher(PasswordHasher):
    verified: int = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(hash, password)


def test_unknown_names_cost_a_verification_too(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing must not tell which names exist: every attempt runs argon2 once."""
    add_user(store, "real", "viewer", PASSWORD)
    monkeypatch.setattr(users, "_hasher", CountingHasher())
    monkeypatch.setattr(CountingHasher, "verified", 0)
    authenticate(store, "real", "wrong password")
    authenticate(store, "ghost", "wrong password")
    authenticate(store, "bad name!", "wrong password")
    assert CountingHasher.verified == 3


class RecordingHasher(PasswordHasher):
    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.checked = hash
        return super().verify(hash, password)


def test_an_unknown_name_costs_what_the_hasher_in_use_costs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dummy hash follows the hasher: one made by an earlier hasher would cost that
    hasher's time, not the time a user's hash now takes."""
    authenticate(store, "ghost", "wrong password")  # a dummy hash by the default hasher
    cheap = RecordingHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    authenticate(store, "ghost", "wrong password")
    used = extract_parameters(cheap.checked)
    assert (used.time_cost, used.memory_cost) == (1, 8)


# -- radmon users (the sub-app) ----------------------------------------------------------------


@pytest.fixture
def cli(store: Store, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Runs ``users_app`` against *store*'s database (either backend)."""
    url = store.engine.url.render_as_string(hide_password=False)
    monkeypatch.delenv("RADMON_CONFIG", raising=False)
    monkeypatch.setenv("RADMON_DATABASE__URL", url)
    return CliRunner()


def test_cli_add_reads_the_password_from_stdin(cli: CliRunner, store: Store) -> None:
    result = cli.invoke(users_app, ["add", "thu", "--role", "officer"], input="  spaced pw \n")
    assert result.exit_code == 0, result.output
    assert "user thu added (officer)" in result.stdout
    # only the line ending is stripped: spaces are part of the password
    assert authenticate(store, "thu", "  spaced pw ").role is Role.OFFICER
    assert authenticate(store, "thu", "spaced pw") is None


def test_cli_add_takes_the_first_line_only(cli: CliRunner, store: Store) -> None:
    result = cli.invoke(users_app, ["add", "ha", "--role", "Admin"], input="first line\r\nnext\n")
    assert result.exit_code == 0, result.output
    assert authenticate(store, "ha", "first line").role is Role.ADMIN


@pytest.mark.parametrize(
    ("args", "stdin", "field"),
    [
        (["add", "bad name", "--role", "viewer"], PASSWORD, "name"),
        (["add", "ok", "--role", "viewer"], "short\n", "password"),
        (["add", "ok", "--role", "viewer"], "\n", "password"),
        (["add", "ok", "--role", "viewer"], "", "password"),
        (["add", "ok", "--role", "boss"], PASSWORD, "--role"),
        (["add", "ok"], PASSWORD, "--role"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_field(
    cli: CliRunner, store: Store, args: list[str], stdin: str, field: str
) -> None:
    result = cli.invoke(users_app, args, input=stdin)
    assert result.exit_code == 2, result.output
    assert field in result.stderr
    assert list_users(store) == []


def test_cli_refuses_a_taken_name(cli: CliRunner, store: Store) -> None:
    add_user(store, "lan", "viewer", PASSWORD)
    result = cli.invoke(users_app, ["add", "lan", "--role", "admin"], input="other password\n")
    assert result.exit_code == 2
    assert "name 'lan'" in result.stderr and "already exists" in result.stderr
    assert get_user(store, "lan").role is Role.VIEWER


def test_cli_list(cli: CliRunner, store: Store) -> None:
    empty = cli.invoke(users_app, ["list"])
    assert empty.exit_code == 0 and "no users yet" in empty.stdout
    add_user(store, "b", "viewer", PASSWORD)
    add_user(store, "a", "commander", PASSWORD)
    set_disabled(store, "b")
    lines = cli.invoke(users_app, ["list"]).stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["a", "commander", "active"],
        ["b", "viewer", "disabled"],
    ]


def test_cli_refuses_a_database_without_the_schema(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RADMON_CONFIG", raising=False)
    monkeypatch.setenv("RADMON_DATABASE__URL", f"sqlite:///{tmp_path}/empty.db")
    result = CliRunner().invoke(users_app, ["add", "lan", "--role", "viewer"], input=PASSWORD)
    assert result.exit_code == 2
    assert "radmon db upgrade" in result.stderr
