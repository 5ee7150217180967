"""The CLI at its edges, in real subprocesses: run ids it cannot hold, a reader that closes the
pipe early, and --json carrying exact values that stay inert on a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from klaviyo_tui.cli.history import MAX_RUN_ID, parse_run_id
from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.store.history import HistoryStore
from tests.cli.test_cli import cli
from tests.support.engine import write_config, write_customers


def _export(tmp_path: Path, **mapping: str) -> None:
    """Export `customers` reading one CSV (no Klaviyo is needed to show or list it)."""
    source = write_customers(tmp_path / "c.csv", [{"email": "a@example.com"}])
    write_config(
        Path(os.environ["KLAVIYO_TUI_CONFIG"]),
        base_url="http://127.0.0.1:9",
        list_id="AAAAAA",
        sources={"main": source},
        mapping={"email": "email", **mapping},
    )


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("12", 12), ("007", 7), (str(MAX_RUN_ID), MAX_RUN_ID)],
)
def test_a_run_id_is_ascii_digits(typed: str, expected: int) -> None:
    assert parse_run_id(typed) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("²", "'²' is not a run id"),
        ("９", "'９' is not a run id"),  # a full-width 9: int() would read it as 9
        ("-1", "'-1' is not a run id"),
        ("", "'' is not a run id"),
        (str(MAX_RUN_ID + 1), f"there is no run {MAX_RUN_ID + 1}"),
        ("9" * 5000, "there is no run 999"),  # past int()'s digit limit: no ValueError either
    ],
)
def test_anything_else_is_a_clear_error(typed: str, message: str) -> None:
    with pytest.raises(AppError, match=message) as caught:
        parse_run_id(typed)
    assert caught.value.exit_code == ExitCode.USAGE


def test_history_show_refuses_run_ids_it_cannot_hold(isolated_dirs: Path) -> None:
    with HistoryStore() as store:
        for _ in range(9):  # run 9 exists: a full-width ９ must not show it
            store.start_run(export="e", connection="c", list_id="AAAAAA")
    for typed, message in [
        ("99999999999999999999", "there is no run 99999999999999999999"),
        ("²", "'²' is not a run id"),
        ("９", "'９' is not a run id"),
    ]:
        done = cli("history", "show", typed)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "internal error" not in done.stderr
        assert done.stdout == ""
    assert cli("history", "show", "9").returncode == 0


def test_an_export_named_show_lists_its_runs(isolated_dirs: Path) -> None:
    done = cli("history", "show")
    assert done.returncode == 2 and "usage: klaviyo-tui history" in done.stderr
    with HistoryStore() as store:
        store.start_run(export="show", connection="c", list_id="AAAAAA")
        store.start_run(export="weekly", connection="c", list_id="AAAAAA")
    listed = json.loads(cli("history", "show", "--json").stdout)
    assert [r["export"] for r in listed] == ["show"]
    assert json.loads(cli("history", "show", "2", "--json").stdout)["export"] == "weekly"


def test_a_typed_list_id_that_cannot_be_one_says_where_ids_come_from(tmp_path: Path) -> None:
    _export(tmp_path)
    done = cli("lists", "show", "../accounts")
    assert done.returncode == 2
    assert "'../accounts' is not a valid Klaviyo list id" in done.stderr
    assert "`klaviyo-tui lists` shows the account's lists" in done.stderr
    assert "base URL" not in done.stderr  # nothing about the connection is wrong


def test_a_name_with_accents_is_suggested_without_them(tmp_path: Path) -> None:
    _export(tmp_path)
    done = cli("exports", "create", "Ünï Clients", "--source", str(tmp_path / "c.csv"))
    assert done.returncode == 2
    assert "For example 'uni-clients'." in done.stderr


def test_retry_failed_of_a_run_id_past_sqlites_range_is_a_usage_error(tmp_path: Path) -> None:
    _export(tmp_path)
    done = cli("run", "customers", "--retry-failed", "99999999999999999999999")
    assert done.returncode == 2
    assert "Invalid value for '--retry-failed'" in done.stderr
    assert "internal error" not in done.stderr


def test_a_reader_closing_the_pipe_early_ends_the_cli_quietly(tmp_path: Path) -> None:
    _export(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_tui", "segments", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # as `| head` does, before the CLI has written anything
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.OUTPUT_CLOSED  # 141: 128 + SIGPIPE, as a shell reports
    assert stderr == b""  # no "internal error", no "Exception ignored" from the last flush


def test_json_carries_exact_values_and_stays_inert(tmp_path: Path) -> None:
    first, last = "first\nname", "esc\x1b[31mcol\x9b1m ‮é"  # C1, a bidi override, é
    _export(tmp_path, first_name=first, last_name=last)
    done = cli("exports", "show", "customers", "--json")
    assert done.returncode == 0, done.stderr
    mapping = json.loads(done.stdout)["mapping"]
    assert (mapping["first_name"], mapping["last_name"]) == (first, last)
    assert done.stdout.isascii()  # every control and non-ASCII character escaped
    assert "\x1b" not in done.stdout and "\\u001b" in done.stdout
    shown = cli("exports", "show", "customers")  # as text, the controls are made visible
    assert "\x1b" not in shown.stdout and "esc\\x1b[31mcol\\x9b1m" in shown.stdout


def test_a_run_that_stopped_says_why_on_its_stdout_line_too() -> None:
    """cron often keeps only stdout: a failed run must not read as an empty one there."""
    from klaviyo_tui.cli.output import format_summary
    from klaviyo_tui.errors import ExitCode
    from klaviyo_tui.events import RunSummary

    gone = "list BQGLgW does not exist in this account"
    failed = RunSummary(7, "two", {"imported": 0}, 0.4, ExitCode.USAGE, error=gone)
    assert format_summary(failed).endswith(f"; stopped (exit code 2): {gone}")
    # stopped before reading (a wrong key): no zero counts, no sync figures that read as a plan
    sync = {"mode": "upsert", "incremental": True, "full_reason": "no earlier run"}
    bad_key = RunSummary(10, "two", {"imported": 0}, 0.2, ExitCode.AUTH, error="bad key", sync=sync)
    assert format_summary(bad_key) == (
        "export two: nothing was sent (run 10); stopped (exit code 4): bad key"
    )
    fine = RunSummary(8, "two", {"imported": 3}, 0.4, ExitCode.OK)
    assert "stopped" not in format_summary(fine)
    too_many = "the mirror run would remove 15 of the list's 99 members; nothing was sent"
    refused = RunSummary(
        11, "two", {}, 0.3, ExitCode.USAGE, error=too_many, dry_run=True, sync={"refused": too_many}
    )
    assert format_summary(refused).count(too_many) == 1  # once, not twice
    dry = RunSummary(9, "two", {}, 0.4, ExitCode.INPUT, error="no valid rows", dry_run=True)
    assert format_summary(dry).endswith("; stopped (exit code 3): no valid rows")
