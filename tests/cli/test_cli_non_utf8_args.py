"""Arguments that are not UTF-8 (a Latin-1 file name, `$'\\xff'` typed in a script) are a usage
error naming the option, on every command: never an internal error, and nothing is saved."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from klaviyo_tui.cli.main import cli as root
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from tests.support.cli import account_lists, config_path, connect, invoke, write_csv

BAD = "bad\udcffname"  # how Python decodes the argv bytes b"bad\xffname"
NOT_UTF8 = "is not valid UTF-8 text"


def _usage_error(output: str, option: str) -> None:
    """Click's usage error for `option` (an argument is named by its metavar, `[ARGS]...`)."""
    assert re.search(rf"Invalid value for '\[?{re.escape(option)}[]'.]", output), output
    assert NOT_UTF8 in output and "internal error" not in output, output


def _text_params() -> list[tuple[list[str], click.Parameter]]:
    """Every (command path, parameter) whose value is text: what a stray byte can reach."""
    found: list[tuple[list[str], click.Parameter]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        for param in command.params:
            if type(param.type) in (click.types.StringParamType, click.Path):
                found.append((path, param))
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(sub, [*path, name])

    walk(root, [])
    return found


@pytest.mark.parametrize(
    ("path", "param"),
    _text_params(),
    ids=lambda item: " ".join(item) if isinstance(item, list) else str(item.name),
)
def test_every_text_parameter_refuses_bytes_that_are_not_utf8(
    path: list[str], param: click.Parameter
) -> None:
    value = [BAD] if isinstance(param, click.Argument) else [param.opts[0], BAD]
    done = invoke(*path, *value)
    assert done.exit_code == 2, done.output
    named = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
    _usage_error(done.output, named)
    assert "bad\\xffname" in done.output  # the byte shown as an escape, not as a surrogate


@pytest.fixture
def connected(sandbox: SandboxServer) -> SandboxServer:
    connect(sandbox.base_url)
    return sandbox


def test_a_list_name_that_is_not_utf8_creates_nothing(connected: SandboxServer) -> None:
    before = account_lists(connected.base_url)
    done = invoke("lists", "create", BAD)
    assert done.exit_code == 2, done.output
    _usage_error(done.output, "NAME")
    assert "type it again in UTF-8" in done.output
    assert account_lists(connected.base_url) == before


def test_a_latin1_file_name_says_to_rename_it_and_saves_nothing(
    tmp_path: Path, connected: SandboxServer
) -> None:
    rows = [{"email": "a@example.com", "name": "A"}]
    latin1 = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.csv"))  # as argv would hold it
    write_csv(latin1, rows)
    saved = config_path().read_bytes()
    done = invoke("exports", "create", "x", "--source", str(latin1), "--list-name", "T list")
    assert done.exit_code == 2, done.output
    _usage_error(done.output, "--source")
    assert "caf\\xe9.csv" in done.output
    assert "rename the file so its name is UTF-8, or give its path in UTF-8" in done.output
    assert config_path().read_bytes() == saved


def test_a_filter_that_is_not_utf8_is_refused_before_it_reaches_the_data(
    tmp_path: Path, connected: SandboxServer
) -> None:
    source = write_csv(tmp_path / "c.csv", [{"email": "a@example.com", "name": "A"}])
    saved = config_path().read_bytes()
    done = invoke(
        "exports",
        "create",
        "x",
        "--source",
        str(source),
        "--list-name",
        "T",
        "--filter",
        "name = '\udcff'",
    )
    assert done.exit_code == 2, done.output
    _usage_error(done.output, "--filter")
    assert config_path().read_bytes() == saved


def test_a_config_path_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_TUI_CONFIG", os.fsdecode(bytes(tmp_path) + b"/caf\xe9.toml"))
    done = invoke("exports", "list")
    assert done.exit_code == 2, done.output
    _usage_error(done.output, "--config")
    assert "from the environment variable KLAVIYO_TUI_CONFIG" in done.output


def test_a_data_folder_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_TUI_DATA", os.fsdecode(bytes(tmp_path) + b"/d\xe9"))
    done = invoke("exports", "list")
    assert done.exit_code == 2, done.output
    assert "KLAVIYO_TUI_DATA" in done.output and NOT_UTF8 in done.output
    assert "d\\xe9" in done.output and "internal error" not in done.output


def test_real_argv_bytes_in_a_subprocess(connected: SandboxServer) -> None:
    """The bytes as a shell passes them, decoded by the interpreter itself."""
    env = {**os.environ, "KLAVIYO_API_KEY": DEMO_KEY}
    done = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"klaviyo_tui", b"lists", b"create", b"bad\xffname"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    stderr = done.stderr.decode("utf-8")  # the message itself is UTF-8: the byte is escaped
    assert done.returncode == 2, stderr
    _usage_error(stderr, "NAME")
    assert "'bad\\xffname'" in stderr
    assert not any(name.startswith("bad") for name in account_lists(connected.base_url))
