"""Text from the config, files or Klaviyo never drives the terminal from the CLI: an ESC, a BEL or
a C1 control in a name, a path, a filter or a reason is printed as a visible escape, and --json
carries it exactly, escaped by JSON (plain ASCII)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.store.history import HistoryStore

TITLE = "\x1b]2;pwned\x07"  # OSC 2: sets the terminal's title
CLIPBOARD = "\x1b]52;c;cGs=\x07"  # OSC 52: writes the clipboard
C1 = "\x9b31m"  # a C1 control sequence introducer
HOSTILE = f"a{TITLE}b{CLIPBOARD}c{C1}[link=https://e.x]x[/link]"


def _toml(text: str) -> str:
    return json.dumps(text)  # a TOML basic string: \\u escapes for the controls


def _config(tmp_path: Path) -> None:
    source = tmp_path / f"in{TITLE}.csv"
    source.write_text("email\na@example.com\n")
    Path(os.environ["KLAVIYO_TUI_CONFIG"]).write_text(
        f"""[connections.c]
display_name = {_toml(HOSTILE)}
base_url = "http://127.0.0.1:9"
consent_accepted_at = "2026-11-28T10:00:00+00:00"

[segments.s]
source = {_toml(str(source))}
filter = {_toml("email = '" + TITLE + "'")}

[exports.e]
connection = "c"
list_id = "AAAAAA"
list_name = {_toml(HOSTILE)}
segments = ["s"]

[exports.e.mapping]
email = "email"
"""
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _assert_inert(out: str, *, shown: bool = True) -> None:
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    if shown:
        assert "\\x1b" in out  # shown as text, not dropped


def test_names_paths_and_filters_print_as_visible_escapes(tmp_path: Path) -> None:
    _config(tmp_path)
    for args in (("connections", "list"), ("exports", "list"), ("exports", "show", "e")):
        done = _cli(*args)
        assert done.returncode == 0, done.stderr
        _assert_inert(done.stdout + done.stderr, shown=args != ("exports", "list"))
    assert "[link=https://e.x]x[/link]" in done.stdout  # markup is text too


def test_reasons_and_errors_from_history_print_as_visible_escapes(tmp_path: Path) -> None:
    _config(tmp_path)
    with HistoryStore() as store:
        run = store.start_run(export="e", connection="c", list_id="AAAAAA")
        store.add_failures(
            run, [Reject(1, "s", "email", HOSTILE, f"Klaviyo: {HOSTILE}", RowState.REJECTED)]
        )
        store.finish_run(
            run,
            RunSummary(run, "e", {"rejected_by_klaviyo": 1}, 1.0, ExitCode.PARTIAL, error=HOSTILE),
        )
    done = _cli("history", "show", str(run))
    assert done.returncode == 0, done.stderr
    _assert_inert(done.stdout + done.stderr)
    as_json = _cli("history", "show", str(run), "--json")  # exact values, escaped by JSON
    assert as_json.returncode == 0, as_json.stderr
    _assert_inert(as_json.stdout + as_json.stderr, shown=False)
    assert as_json.stdout.isascii()
    record = json.loads(as_json.stdout)
    assert record["error"] == HOSTILE
    assert record["reasons"][0]["reason"] == f"Klaviyo: {HOSTILE}"


def test_an_error_message_quoting_config_text_is_inert(tmp_path: Path) -> None:
    _config(tmp_path)
    done = _cli("run", "e", "--dry-run")  # no key anywhere: the message names the connection
    assert done.returncode != 0
    _assert_inert(done.stderr, shown=False)  # whatever it quotes stays inert
