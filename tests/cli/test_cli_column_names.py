"""A column is what the file's header says, spaces and all, from `exports create/edit` through the
saved config to what Klaviyo receives: `code` and `code ` are two columns, each sent under its own
name as a custom property (the key is the column's name, untrimmed, so they cannot collide), and
messages quote names so a space at either end shows. Against the sandbox over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config_read import load_config
from tests.support.cli import Terminal, account_lists, config_path, connect, invoke
from tests.support.sandbox import list_members


def _file(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _run(name: str) -> dict[str, Any]:
    ran = invoke("run", name, "--json")
    assert ran.exit_code == 0, ran.output
    summary: dict[str, Any] = json.loads(ran.stdout.splitlines()[-1])
    return summary


def _profiles(sandbox: SandboxServer, list_name: str) -> dict[str, dict[str, Any]]:
    """email -> attributes of every member of the list, read back over the sandbox's API."""
    list_id = account_lists(sandbox.base_url)[list_name]
    members = list_members(sandbox.base_url, list_id)
    return {m["attributes"]["email"]: m["attributes"] for m in members}


def test_a_property_with_a_trailing_space_sends_that_column(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url, "shop")
    source = _file(tmp_path / "sp.csv", "email,code,code \nsp@example.com,REAL,SPACE\n")
    done = invoke(
        "exports", "create", "sp", "--source", source, "--list-name", "SP", "--property", "code ",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert load_config(config_path()).exports["sp"].mapping.properties == ("code ",)
    assert "code " in config_path().read_text(encoding="utf-8")  # written as given

    assert _run("sp")["counts"]["imported"] == 1
    sent = _profiles(sandbox, "SP")["sp@example.com"]["properties"]
    assert sent == {"code ": "SPACE"}  # that column's value, under its own name

    shown = invoke("exports", "show", "sp")
    assert "properties     'code '" in shown.stdout  # the space shows


def test_both_columns_go_under_their_own_names_and_edits_keep_spaces(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    source = _file(tmp_path / "sp.csv", "email,code,code ,name \nb@example.com,REAL,SPACE,Bo\n")
    made = invoke(
        "exports", "create", "both", "--source", source, "--list-name", "Both",
        "--property", "code",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    edited = invoke(  # a change of spaces alone is a change, written as given
        "exports", "edit", "both", "--set", "properties=code, code ",
        "--set", "mapping.first_name=name ",
    )  # fmt: skip
    assert edited.exit_code == 0, edited.output
    mapping = load_config(config_path()).exports["both"].mapping
    assert (mapping.properties, mapping.first_name) == (("code", "code "), "name ")

    assert _run("both")["counts"]["imported"] == 1
    sent = _profiles(sandbox, "Both")["b@example.com"]
    assert sent["properties"] == {"code": "REAL", "code ": "SPACE"}
    assert sent["first_name"] == "Bo"


def test_properties_all_and_map_with_a_name_ending_in_a_space(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    source = _file(tmp_path / "sp3.csv", "email,name \nann@example.com,Ann\n")
    every = invoke(
        "exports", "create", "sp3", "--source", source, "--list-name", "SP3", "--properties", "all"
    )
    assert every.exit_code == 0, every.output
    assert load_config(config_path()).exports["sp3"].mapping.properties == ("name ",)
    assert _run("sp3")["counts"]["imported"] == 1
    assert _profiles(sandbox, "SP3")["ann@example.com"]["properties"] == {"name ": "Ann"}

    mapped = invoke(
        "exports", "create", "sp4", "--source", source, "--list-name", "SP4",
        "--map", "first_name=name ",
    )  # fmt: skip
    assert mapped.exit_code == 0, mapped.output
    assert load_config(config_path()).exports["sp4"].mapping.first_name == "name "
    assert _run("sp4")["counts"]["imported"] == 1
    assert _profiles(sandbox, "SP4")["ann@example.com"]["first_name"] == "Ann"


def test_a_name_without_its_space_is_refused_with_the_spaces_shown(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    source = _file(tmp_path / "n.csv", "email,name \nann@example.com,Ann\n")
    for flag in (["--map", "first_name=name"], ["--property", "name"]):
        done = invoke("exports", "create", "n", "--source", source, "--list-name", "N", *flag)
        assert done.exit_code == 3, done.output
        assert "column 'name' is not in segment 'n'" in done.stderr
        assert "(did you mean 'name '?)" in done.stderr
        assert "its columns: 'email', 'name '" in done.stderr
    assert "n" not in load_config(config_path()).exports  # nothing saved
    assert account_lists(sandbox.base_url) == {}  # nor created in Klaviyo


def test_answers_on_a_terminal_keep_a_name_s_trailing_space(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    source = _file(tmp_path / "t.csv", "email,code,code ,name \nt@example.com,REAL,SPACE,Tia\n")
    term = Terminal("exports", "create", "t", "--source", source, "--filter", "")
    term.expect("4 columns: email, code, 'code ', 'name '")  # the spaces show
    term.answer("Email column [email]: ", "")
    term.answer("More fields", "first_name=name ")
    term.answer("Custom properties", "code, code ")  # the space after a comma separates
    term.answer("Klaviyo list", "")
    term.answer("create it?", "y")
    term.answer("Schedule", "")
    term.expect("properties  code, 'code '")
    term.answer("Save export 't'? [Y/n]: ", "")
    assert term.finish() == 0, term.transcript
    mapping = load_config(config_path()).exports["t"].mapping
    assert (mapping.first_name, mapping.properties) == ("name ", ("code", "code "))
