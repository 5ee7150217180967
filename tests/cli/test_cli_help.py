"""Every command explains itself: `--help` works and shows an example, the root help shows the
real config path; questions without a terminal name their flag; declining changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest

from klaviyo_tui.cli.main import cli
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from tests.support.cli import config_path, connect, invoke


def _paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            out += _paths(sub, (*path, name))
    return out


ALL = _paths(cli)


def test_the_tree_is_walked() -> None:
    names = {" ".join(p) for p in ALL}
    assert {"exports create", "exports edit", "segments remove", "lists show", "run"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    done = invoke(*path, "--help")
    assert done.exit_code == 0, done.output
    help_text = done.output
    assert "example" in help_text.lower(), help_text  # sandbox says "Fault SPEC example"
    first = help_text.split("\n\n")[1].strip()  # the line under "Usage:"
    assert first and not first.startswith("Options"), help_text


def test_root_help_shows_the_real_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squeezed = "".join(invoke("--help").output.split())
    assert str(config_path()) in squeezed
    other = tmp_path / "elsewhere.toml"
    monkeypatch.setenv("KLAVIYO_TUI_CONFIG", str(other))
    assert str(other) in "".join(invoke("--help").output.split())


def test_connections_add_without_a_terminal_says_to_use_yes(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_API_KEY", DEMO_KEY)
    done = invoke("connections", "add", "acme", "--base-url", sandbox.base_url)
    assert done.exit_code == 2
    assert "--yes" in done.stderr and "Aborted" not in done.output
    assert not config_path().exists()
    declined = invoke("connections", "add", "acme", "--base-url", sandbox.base_url, stdin="n\n")
    assert declined.exit_code == 0 and "nothing changed" in declined.stderr
    assert not config_path().exists()
    accepted = invoke("connections", "add", "acme", "--base-url", sandbox.base_url, "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert DEMO_KEY not in accepted.output


def test_declining_a_removal_exits_0_and_changes_nothing(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    source = tmp_path / "c.csv"
    source.write_text("email\na@example.com\n")
    assert invoke("segments", "create", "s", "--source", str(source)).exit_code == 0
    before = config_path().read_bytes()
    for args in (["connections", "remove", "sandbox"], ["segments", "remove", "s"]):
        done = invoke(*args, stdin="n\n")
        assert done.exit_code == 0, done.output
        assert "nothing changed" in done.stderr
        unanswered = invoke(*args)  # no terminal, nothing on standard input
        assert unanswered.exit_code == 2 and "--yes" in unanswered.stderr
    assert config_path().read_bytes() == before


def test_connections_list_as_json(sandbox: SandboxServer) -> None:
    import json

    connect(sandbox.base_url)
    data = json.loads(invoke("connections", "list", "--json").stdout)
    assert [c["name"] for c in data] == ["sandbox"]
    assert data[0]["base_url"] == sandbox.base_url and data[0]["consent_accepted_at"]
    assert DEMO_KEY not in json.dumps(data) and data[0]["key"].endswith("(keyring)")


def test_history_show_says_1_job(tmp_path: Path, sandbox: SandboxServer) -> None:
    from tests.support.cli import customers

    connect(sandbox.base_url)
    source = customers(tmp_path / "c.csv", n=1)
    made = invoke("exports", "create", "one", "--source", str(source), "--list-name", "One")
    assert made.exit_code == 0, made.output
    assert "1 row to export" in made.stdout
    ran = invoke("run", "one")
    assert ran.exit_code == 0, ran.output
    shown = invoke("history", "show", "1")
    assert "1 job\n" in shown.stdout, shown.stdout
    assert os.path.exists(config_path())
