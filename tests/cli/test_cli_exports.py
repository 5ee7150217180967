"""`exports create|edit` and `segments` from the CLI, against the sandbox over loopback: what
is checked before saving, what is printed, what the config holds afterwards, and the questions
asked on a real (pseudo-)terminal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config_read import load_config
from tests.support.cli import (
    Terminal,
    account_lists,
    config_path,
    connect,
    customers,
    invoke,
    write_csv,
)


@pytest.fixture
def source(tmp_path: Path, sandbox: SandboxServer) -> Path:
    connect(sandbox.base_url)
    return customers(tmp_path / "customers.csv")


def test_create_detects_email_creates_the_list_and_the_export_runs(
    source: Path, sandbox: SandboxServer
) -> None:
    done = invoke("exports", "create", "weekly", "--source", str(source), "--list-name", "Weekly")
    assert done.exit_code == 0, done.output
    assert "email column: contact (detected" in done.stdout
    list_id = account_lists(sandbox.base_url)["Weekly"]
    assert f"list: Weekly ({list_id}), created" in done.stdout
    assert "5 rows to export" in done.stdout
    export = load_config(config_path()).exports["weekly"]
    assert (export.list_id, export.list_name, export.mapping.email) == (
        list_id,
        "Weekly",
        "contact",
    )
    assert export.connection == "sandbox"  # the only connection

    ran = invoke("run", "weekly", "--json")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout.splitlines()[-1])["counts"]["imported"] == 5

    again = invoke("exports", "create", "daily", "--source", str(source), "--list-name", "Weekly")
    assert again.exit_code == 0, again.output
    assert f"list: Weekly ({list_id}), found" in again.stdout
    assert list(account_lists(sandbox.base_url)) == ["Weekly"]  # found, not created twice


def test_create_maps_fields_properties_filter_and_schedule(
    source: Path, sandbox: SandboxServer
) -> None:
    done = invoke(
        "exports", "create", "vip", "--source", str(source), "--list-name", "VIP",
        "--map", "email=contact", "--map", "first_name=First", "--map", "location.city=City",
        "--properties", "all", "--filter", "orders > 2", "--schedule", "0 6 * * 1",
        "--default-region", "de", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["rows"] == 2 and data["list_created"] is True
    assert data["mapping"] == {"email": "contact", "first_name": "First", "location.city": "City"}
    assert data["properties"] == ["orders"]  # every column not mapped to a field
    assert data["segments"] == [
        {"name": "vip", "source": str(source), "query": None, "filter": "orders > 2"}
    ]
    export = load_config(config_path()).exports["vip"]
    assert (export.schedule, export.default_region) == ("0 6 * * 1", "DE")


def test_create_from_a_sql_query(tmp_path: Path, sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (mail TEXT, name TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [("a@example.com", "A")] * 1)
    done = invoke(
        "exports", "create", "db", "--sql-url", f"sqlite:///{db}",
        "--query", "SELECT * FROM people", "--list-name", "DB",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "1 row to export" in done.stdout  # not "1 rows"
    segment = load_config(config_path()).segments["db"]
    assert (segment.source, segment.query) == (f"sqlite:///{db}", "SELECT * FROM people")


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--list", "ZZZZZZ"], 2, ["ZZZZZZ", "does not exist", "klaviyo-tui lists"]),
        (["--map", "first_name=Nope"], 3, ["'Nope' is not in", "'contact', 'First'"]),
        (["--map", "first_name=first"], 3, ["did you mean 'First'"]),
        (["--map", "shoe_size=First"], 2, ["unknown field 'shoe_size'", "location.city"]),
        (["--schedule", "every day"], 2, ["five fields"]),
        (["--connection", "nope"], 2, ["no connection named 'nope'"]),
        (["--filter", "nope > 1"], 3, ["nope"]),
        (["--default-region", "XX"], 2, ["'XX'"]),
        (["--properties", "all", "--property", "City"], 2, ["--property or --properties"]),
    ],
)
def test_create_checks_everything_before_saving_or_creating_a_list(
    source: Path, sandbox: SandboxServer, args: list[str], code: int, words: list[str]
) -> None:
    before = config_path().read_bytes()
    base = ["exports", "create", "weekly", "--source", str(source)]
    if "--list" not in args:
        base += ["--list-name", "New list"]
    done = invoke(*base, *args)
    assert done.exit_code == code, done.output
    for word in words:
        assert word in done.output
    assert "Traceback" not in done.output
    assert config_path().read_bytes() == before
    assert account_lists(sandbox.base_url) == {}  # no list created for an export not saved


def test_create_refuses_a_taken_or_unusable_name(source: Path) -> None:
    args = ["--source", str(source), "--list-name", "L"]
    assert invoke("exports", "create", "weekly", *args).exit_code == 0
    taken = invoke("exports", "create", "weekly", *args)
    assert taken.exit_code == 2 and "exists already" in taken.output
    spaced = invoke("exports", "create", "Weekly VIP", *args)
    assert spaced.exit_code == 2 and "'weekly-vip'" in spaced.output


def test_without_a_terminal_missing_flags_are_named(source: Path, sandbox: SandboxServer) -> None:
    connect(sandbox.base_url, "other")
    done = invoke("exports", "create", "weekly")
    assert done.exit_code == 2
    for flag in ("--connection NAME (one of other, sandbox)", "--list ID", "--source PATH"):
        assert flag in done.stderr
    assert "terminal" in done.stderr and "Aborted" not in done.output


def test_a_database_url_without_a_query_names_the_missing_flag(source: Path) -> None:
    done = invoke("exports", "create", "x", "--sql-url", "sqlite:///shop.db", "--list-name", "X")
    assert done.exit_code == 2 and "missing --query SQL" in done.stderr


def test_no_email_column_found_says_how_to_name_it(tmp_path: Path, sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    plain = write_csv(tmp_path / "p.csv", [{"name": "A", "city": "B"}])
    done = invoke("exports", "create", "x", "--source", str(plain), "--list-name", "X")
    assert done.exit_code == 3
    assert "'name', 'city'" in done.stderr and "--map email=COLUMN" in done.stderr


def test_edit_keeps_comments_and_other_tables(source: Path, sandbox: SandboxServer) -> None:
    args = ["--source", str(source), "--map", "email=contact"]
    assert invoke("exports", "create", "a", *args, "--list-name", "A").exit_code == 0
    assert invoke("exports", "create", "b", *args, "--list-name", "B").exit_code == 0
    path = config_path()
    path.write_text("# my notes, keep them\n" + path.read_text())
    other = path.read_text().split("[exports.b]")[1]
    done = invoke(
        "exports", "edit", "a", "--set", "schedule=@daily", "--set", "mapping.first_name=First",
        "--set", "properties=City,orders", "--set", "filter=orders >= 1", "--set", "list_name=A2",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "4 rows to export" in done.stdout
    assert f"list: A2 ({account_lists(sandbox.base_url)['A2']}), created" in done.stdout
    text = path.read_text()
    assert text.startswith("# my notes, keep them\n")
    assert text.split("[exports.b]")[1] == other
    export = load_config(path).exports["a"]
    assert export.schedule == "@daily" and export.list_name == "A2"
    assert export.mapping.first_name == "First" and export.mapping.properties == ("City", "orders")

    cleared = invoke("exports", "edit", "a", "--set", "schedule=", "--set", "mapping.first_name=")
    assert cleared.exit_code == 0, cleared.output
    export = load_config(path).exports["a"]
    assert export.schedule is None and export.mapping.first_name is None

    same = invoke("exports", "edit", "a", "--set", "default_region=US")
    assert same.exit_code == 0 and "nothing changed" in same.stderr


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("colour=red", ["unknown key 'colour'", "list_name", "mapping.FIELD", "location.city"]),
        ("mapping.email=", ["cannot be removed"]),
        ("mapping.phone_number=Phone", ["'Phone' is not in"]),
        ("list_id=ZZZZZZ", ["does not exist", "klaviyo-tui lists --connection sandbox"]),
        ("connection=nope", ["no connection named 'nope'"]),
        ("filter=nope > 1", ["nope"]),
        ("segments=missing", ["no segment named 'missing'"]),
        ("schedule=soon", ["five fields"]),
        ("no equals sign", ["key=value"]),
    ],
)
def test_edit_refuses_what_would_not_run(source: Path, change: str, words: list[str]) -> None:
    args = ["--source", str(source), "--list-name", "A"]
    assert invoke("exports", "create", "a", *args).exit_code == 0
    before = config_path().read_bytes()
    done = invoke("exports", "edit", "a", "--set", change)
    assert done.exit_code != 0
    for word in words:
        assert word in done.output
    assert config_path().read_bytes() == before


def test_editing_a_shared_segment_gives_the_export_its_own(source: Path) -> None:
    assert invoke("segments", "create", "all", "--source", str(source)).exit_code == 0
    for name in ("a", "b"):
        made = invoke("exports", "create", name, "--segment", "all", "--list-name", "L")
        assert made.exit_code == 0, made.output
    done = invoke("exports", "edit", "a", "--set", "filter=orders > 3")
    assert done.exit_code == 0, done.output
    assert "also read by b" in done.stderr
    config = load_config(config_path())
    assert config.exports["a"].segments == ("a",) and config.segments["a"].filter == "orders > 3"
    assert config.exports["b"].segments == ("all",) and config.segments["all"].filter is None


def test_segments_list_show_create_and_remove(source: Path) -> None:
    made = invoke("segments", "create", "vip", "--source", str(source), "--filter", "orders > 3")
    assert made.exit_code == 0 and "saved segment 'vip': 1 row" in made.stdout
    assert invoke("exports", "create", "e", "--segment", "vip", "--list-name", "L").exit_code == 0
    listed = json.loads(invoke("segments", "list", "--json").stdout)
    assert listed == [
        {"name": "vip", "source": str(source), "query": None, "filter": "orders > 3",
         "exports": ["e"]}
    ]  # fmt: skip
    shown = invoke("segments", "show", "vip")
    assert "orders > 3" in shown.stdout and "exports  e" in shown.stdout
    refused = invoke("segments", "remove", "vip", "--yes")
    assert refused.exit_code == 2 and "read by export e" in refused.stderr
    assert "exports remove" in refused.stderr
    bad = invoke("segments", "create", "bad", "--source", str(source), "--filter", "nope > 1")
    assert bad.exit_code == 3 and "bad" not in load_config(config_path()).segments
    assert invoke("exports", "remove", "e", "--yes").exit_code == 0  # prunes vip with it
    assert invoke("segments", "create", "x", "--source", str(source)).exit_code == 0
    declined = invoke("segments", "remove", "x", stdin="n\n")
    assert declined.exit_code == 0 and "nothing changed" in declined.stderr
    assert invoke("segments", "remove", "x", "--yes").exit_code == 0
    assert load_config(config_path()).segments == {}


def test_exports_list_and_show_as_json(source: Path) -> None:
    args = ["--source", str(source), "--list-name", "L", "--map", "location.zip=City"]
    assert invoke("exports", "create", "a", *args).exit_code == 0
    listed = json.loads(invoke("exports", "list", "--json").stdout)
    shown = json.loads(invoke("exports", "show", "a", "--json").stdout)
    assert listed == [shown]
    assert shown["mapping"] == {"email": "contact", "location.zip": "City"}
    assert "location.zip" in invoke("exports", "show", "a").stdout


def test_create_on_a_terminal_asks_for_each_missing_piece(
    source: Path, sandbox: SandboxServer
) -> None:
    term = Terminal("exports", "create", "weekly")
    term.answer("database URL: ", str(source))
    term.expect("4 columns: contact, First, City, orders")
    term.answer("every row): ", "orders >")
    term.answer("every row): ", "orders > 1")  # the problem was shown; asked again
    term.expect("3 rows to export")
    term.answer("Email column [contact]: ", "")  # detected
    term.answer("Also map first_name <- First, location.city <- City?", "")
    term.answer("More fields", "")
    term.answer("Custom properties", "orders")
    term.answer("Klaviyo list", "")  # default: the export's name
    term.answer("create it?", "y")
    term.answer("Schedule", "")
    term.expect("  list        weekly (found or created when saved)")  # a summary first
    term.answer("Save export 'weekly'? [Y/n]: ", "")
    assert term.finish() == 0, term.transcript
    assert "The filter of segment 'weekly'" in term.transcript.split("every row): ")[1]
    assert "saved export 'weekly'" in term.transcript
    export = load_config(config_path()).exports["weekly"]
    assert export.mapping.email == "contact" and export.mapping.first_name == "First"
    assert export.mapping.location == {"city": "City"} and export.mapping.properties == ("orders",)
    assert export.list_id == account_lists(sandbox.base_url)["weekly"]


def test_declining_to_save_on_a_terminal_changes_nothing(source: Path) -> None:
    before = config_path().read_bytes()
    term = Terminal("exports", "create", "weekly", "--source", str(source), "--filter", "")
    term.answer("Email column", "")
    term.answer("Also map", "n")
    term.answer("More fields", "")
    term.answer("Custom properties", "")
    term.answer("Klaviyo list", "weekly")
    term.answer("create it?", "y")
    term.answer("Schedule", "")
    term.answer("Save export 'weekly'?", "n")
    assert term.finish() == 0
    assert "nothing changed" in term.transcript
    assert config_path().read_bytes() == before


def test_the_cli_and_the_builder_share_one_list_of_guesses() -> None:
    """`suggest_mapping` (the service) is what both `exports create` and the builder preset."""
    from klaviyo_tui.services.exports import suggest_mapping

    columns = ["Customer ID", "Phone", "first", "Surname", "Town", "State", "Postcode", "Street"]
    columns += ["country_code", "e-mail", "mobile"]
    assert suggest_mapping(columns) == {
        "phone_number": "Phone",
        "external_id": "Customer ID",
        "first_name": "first",
        "last_name": "Surname",
        "location.city": "Town",
        "location.region": "State",
        "location.country": "country_code",
        "location.zip": "Postcode",
        "location.address1": "Street",
    }
