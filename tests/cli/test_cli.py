"""The headless CLI in real subprocesses: exit codes, stdout vs stderr, --json, --due, history,
resume after SIGKILL, and the API key never leaking."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klaviyo_tui.demo.launch import MemoryKeyring
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from tests.support.engine import (
    create_list,
    import_jobs,
    list_emails,
    write_config,
    write_customers,
)


def cli(
    *args: str, key: str | None = DEMO_KEY, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("KLAVIYO_API_KEY", None)
    if key:
        env["KLAVIYO_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        input=stdin,
    )


def rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"email": f"user{i}@example.com", "name": f"User {i}"} for i in range(start, start + n)]


@pytest.fixture
def setup(tmp_path: Path, sandbox: SandboxServer, isolated_dirs: Path) -> tuple[str, Path]:
    data = rows(50)
    data[3]["email"] = "broken@"
    source = write_customers(tmp_path / "c.csv", data)
    list_id = create_list(sandbox.base_url)
    write_config(
        Path(os.environ["KLAVIYO_TUI_CONFIG"]),
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"main": source},
        mapping={"email": "email", "first_name": "name"},
    )
    return list_id, source


def test_run_prints_summary_on_stdout_progress_on_stderr(
    setup: tuple[str, Path], sandbox: SandboxServer
) -> None:
    list_id, _ = setup
    done = cli("run", "customers")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert "49 imported" in done.stdout and "1 invalid" in done.stdout
    assert "reading" in done.stderr  # plain timestamped progress lines when not a TTY
    assert len(list_emails(sandbox.base_url, list_id)) == 49


def test_run_json_and_history(setup: tuple[str, Path]) -> None:
    done = cli("run", "customers", "--json")
    summary = json.loads(done.stdout)
    assert summary["counts"]["imported"] == 49
    assert summary["exit_code"] == 0
    runs = json.loads(cli("history", "--json").stdout)
    assert [r["id"] for r in runs] == [summary["run_id"]]
    shown = cli("history", "show", str(summary["run_id"]))
    assert shown.returncode == 0
    assert "imported" in shown.stdout and "rejects" in shown.stdout


def test_dry_run_sends_nothing(setup: tuple[str, Path], sandbox: SandboxServer) -> None:
    done = cli("run", "customers", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["jobs"] == 1 and plan["profiles"] == 49
    assert import_jobs(sandbox.base_url) == []


def test_exit_codes(setup: tuple[str, Path], tmp_path: Path) -> None:
    assert cli("run", "nope").returncode == 2
    assert cli("run").returncode == 2
    no_key = cli("run", "customers", key=None)
    assert no_key.returncode == 4
    assert "KLAVIYO_API_KEY" in no_key.stderr
    wrong = cli("run", "customers", key="pk_" + "x" * 34)
    assert wrong.returncode == 4
    assert "x" * 34 not in wrong.stderr + wrong.stdout  # the key itself is never printed
    assert "Traceback" not in wrong.stderr


def test_retry_of_a_run_with_nothing_klaviyo_rejected_says_so(setup: tuple[str, Path]) -> None:
    first = json.loads(cli("run", "customers", "--json").stdout)["run_id"]
    done = cli("run", "customers", "--retry-failed", str(first))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"Klaviyo rejected no row of run {first} that can be sent again" in done.stderr
    assert "need a fix in the source" in done.stderr  # the hint: what to do instead
    assert [r["id"] for r in json.loads(cli("history", "--json").stdout)] == [first]


def test_broken_config_is_reported_and_left_untouched(isolated_dirs: Path) -> None:
    path = Path(os.environ["KLAVIYO_TUI_CONFIG"])
    text = "[connections.a]\ndisplay_name = 'x'\nbase_url = \n"
    path.write_text(text)
    done = cli("run", "customers")
    assert done.returncode == 2
    assert str(path) in done.stderr and "line 3" in done.stderr
    assert "Traceback" not in done.stderr
    assert path.read_text() == text


def test_due_runs_only_exports_whose_schedule_is_due(
    tmp_path: Path, sandbox: SandboxServer, isolated_dirs: Path
) -> None:
    source = write_customers(tmp_path / "c.csv", rows(5))
    list_id = create_list(sandbox.base_url)
    config = Path(os.environ["KLAVIYO_TUI_CONFIG"])
    write_config(
        config,
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"main": source},
        schedule="* * * * *",
    )
    first = cli("run", "--due", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[0])["counts"]["imported"] == 5
    # It just ran: the next minute has not come yet, unless the clock crossed a minute boundary.
    second = cli("run", "--due")
    assert second.returncode == 0
    assert second.stdout == "" or time.localtime().tm_sec < 5
    write_config(
        config,
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"main": source},
        schedule="0 0 1 1 *",
    )  # once a year: its last fire time is before the last run
    third = cli("run", "--due")
    assert third.returncode == 0
    assert third.stdout == "" and "no export is due" in third.stderr


def test_key_never_leaks_into_files_or_output(setup: tuple[str, Path], isolated_dirs: Path) -> None:
    done = cli("run", "customers", "--json")
    assert done.returncode == 0
    hist = cli("history", "show", str(json.loads(done.stdout)["run_id"]))
    for text in (done.stdout, done.stderr, hist.stdout, hist.stderr):
        assert DEMO_KEY not in text
    for path in isolated_dirs.rglob("*"):
        if path.is_file():
            assert DEMO_KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_resume_after_sigkill_at_several_points(tmp_path: Path, isolated_dirs: Path) -> None:
    """Kill the CLI mid-run three times; each --resume continues, the list ends exact, and no batch
    the journal had recorded as accepted is sent again."""
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.4)) as server:
        n = 60_000
        source = write_customers(tmp_path / "c.csv", rows(n))
        list_id = create_list(server.base_url)
        write_config(
            Path(os.environ["KLAVIYO_TUI_CONFIG"]),
            base_url=server.base_url,
            list_id=list_id,
            sources={"main": source},
        )
        history = isolated_dirs / "data" / "history.sqlite3"
        unjournaled = 0
        for kill_after, resume in (("sent", False), ("confirmed", True), ("sent", True)):
            env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)
            args = ["run", "customers"] + (["--resume"] if resume else [])
            proc = subprocess.Popen(
                [sys.executable, "-m", "klaviyo_tui", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert proc.stderr is not None
            for line in proc.stderr:
                if kill_after in line and "batch" in line:
                    break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with sqlite3.connect(history) as db:
                unjournaled += db.execute(
                    "SELECT count(*) FROM batches WHERE state = 'submitting'"
                ).fetchone()[0]
        final = cli("run", "customers", "--resume", "--json")
        assert final.returncode == 0, final.stderr
        assert sorted(list_emails(server.base_url, list_id)) == sorted(
            f"user{i}@example.com" for i in range(n)
        )
        jobs = import_jobs(server.base_url)
        batches = 6
        assert batches <= len(jobs) <= batches + unjournaled
        statuses = json.loads(cli("history", "--json").stdout)
        assert statuses[0]["status"] == "ok"


def test_connections_add_leaves_no_key_behind_when_the_config_cannot_be_saved(
    sandbox: SandboxServer, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from klaviyo_tui.cli.main import cli as root

    def refuse(*_: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    result = CliRunner().invoke(
        root,
        ["connections", "add", "acme", "--display-name", "Acme", "--base-url", sandbox.base_url],
        input=f"{DEMO_KEY}\ny\n",
    )
    assert result.exit_code == 2
    assert "nothing was saved" in result.output
    assert memory_keyring.passwords == {}
    assert not Path(os.environ["KLAVIYO_TUI_CONFIG"]).exists()


def test_connections_add_stores_the_key_in_the_keyring(
    sandbox: SandboxServer, memory_keyring: MemoryKeyring
) -> None:
    from click.testing import CliRunner

    from klaviyo_tui.cli.main import cli as root

    result = CliRunner().invoke(
        root,
        ["connections", "add", "acme", "--display-name", "Acme", "--base-url", sandbox.base_url],
        input=f"{DEMO_KEY}\ny\n",
    )
    assert result.exit_code == 0, result.output
    assert memory_keyring.passwords == {("klaviyo-tui", "acme"): DEMO_KEY}
    text = Path(os.environ["KLAVIYO_TUI_CONFIG"]).read_text()
    assert "consent_accepted_at" in text and DEMO_KEY not in text
    assert DEMO_KEY not in result.output
