"""Concurrency and crash safety: a second run of a running export is refused clearly, and the
SQLite history (WAL) survives a SIGKILL in the middle of its writes: the interrupted run is
reported as interrupted and --resume finishes it."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from tests.cli.test_cli import cli, rows
from tests.hardening.test_hardening_config import config_path, run_interfering
from tests.support.engine import create_list, list_emails, write_config, write_customers

pytestmark = pytest.mark.timeout(120)


def cli_until(args: list[str], marker: str, *, stdout: int) -> subprocess.Popen[str]:
    """The CLI started in its own process, once its stderr has shown `marker` (the rest of
    stderr stays unread in the pipe)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_tui", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY),
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if marker in line:
            break
    return proc


def test_second_run_of_a_running_export_is_refused(tmp_path: Path) -> None:
    # Jobs take 5 s: the second process must start (slow on a loaded machine) while the first
    # still holds the lock.
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=5.0)) as server:
        n = 30_000
        list_id = create_list(server.base_url)
        source = write_customers(tmp_path / "c.csv", rows(n))
        write_config(
            config_path(), base_url=server.base_url, list_id=list_id, sources={"m": source}
        )
        second: list[subprocess.CompletedProcess[str]] = []
        code, _, err = run_interfering(
            ["run", "customers"], " sent: ", lambda: second.append(cli("run", "customers"))
        )
        assert code == 0, err
        refused = second[0]
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr
        assert "'customers'" in refused.stderr and "already running" in refused.stderr
        assert "pid " in refused.stderr
        pid = int(refused.stderr.split("pid ")[1].split(",")[0].split(")")[0])
        assert pid != os.getpid()
        runs = json.loads(cli("history", "--json").stdout)
        assert [r["status"] for r in runs] == ["ok"]  # the refused run left no record
        assert len(list_emails(server.base_url, list_id)) == n


@pytest.mark.slow
def test_sqlite_survives_sigkill_during_writes_and_resume_finishes(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    """Half the rows are invalid, so the run writes ~40,000 failure rows to SQLite while it
    works; it is killed at three seeded random moments of that work."""
    n = 80_000
    data = rows(n)
    for i in range(0, n, 2):
        data[i]["email"] = f"bad{i}@"
    history = isolated_dirs / "data" / "history.sqlite3"
    rng = random.Random(7)
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.3)) as server:
        list_id = create_list(server.base_url)
        source = write_customers(tmp_path / "c.csv", data)
        write_config(
            config_path(), base_url=server.base_url, list_id=list_id, sources={"m": source}
        )
        killed: list[int] = []
        for attempt in range(3):
            args = ["run", "customers"] + (["--resume"] if attempt else [])
            proc = cli_until(args, "reading", stdout=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 0.6))  # a random moment of the work (not a wait for it)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed.append(proc.pid)
            with sqlite3.connect(history) as db:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            runs = json.loads(cli("history", "--json").stdout)
            assert len(runs) == 1 and runs[0]["status"] == "interrupted", runs
            shown = cli("history", "show", str(runs[0]["id"]))
            assert "interrupted" in shown.stdout and "--resume" in shown.stdout
        final = cli("run", "customers", "--resume", "--json")
        assert final.returncode == 0, final.stderr
        # the killed runs' scratch folders (spills, key tape) went with the next run
        left = [p.name for p in Path(tempfile.gettempdir()).glob("klaviyo-tui-*-*-*")]
        assert not [name for name in left if any(f"-{pid}-" in name for pid in killed)]
        summary = json.loads(final.stdout)
        assert summary["counts"]["invalid"] == n // 2
        assert summary["counts"]["imported"] == n // 2
        assert sum(summary["counts"].values()) == n
        expected = sorted(r["email"] for i, r in enumerate(data) if i % 2)
        assert sorted(list_emails(server.base_url, list_id)) == expected
        runs = json.loads(cli("history", "--json").stdout)
        assert [r["status"] for r in runs] == ["ok"]
        with sqlite3.connect(history) as db:
            failures = db.execute("SELECT count(*), count(DISTINCT row) FROM failures").fetchone()
        assert failures == (n // 2, n // 2)  # no row recorded twice across the kills


def test_a_run_stopped_by_sigterm_prints_its_summary_and_every_row_has_a_state(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    """cron or systemd stopping a run: stdout still gets its JSON summary; rows of jobs Klaviyo
    accepted are unconfirmed (not "not sent"), rows never read are not sent, the counts add up
    to the source, and --resume finishes without sending an accepted batch twice."""
    n = 200_000  # 20 jobs at 10 a second, jobs that take 5 s: stopped mid-way through both
    with SandboxServer(SandboxSettings(rate_limits=True, job_delay=5.0)) as server:
        list_id = create_list(server.base_url)
        source = write_customers(tmp_path / "c.csv", rows(n))
        write_config(
            config_path(), base_url=server.base_url, list_id=list_id, sources={"m": source}
        )
        proc = cli_until(["run", "customers", "--json"], " sent: ", stdout=subprocess.PIPE)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "--resume" in err and "Traceback" not in err
        summary = json.loads(out)
        counts = summary["counts"]
        assert summary["exit_code"] == 130
        assert sum(counts.values()) == n, counts
        assert counts["unconfirmed"] >= 10_000 and counts["unconfirmed"] % 10_000 == 0, counts
        assert counts["not_sent"] > 0 and counts["imported"] == 0, counts
        runs = json.loads(cli("history", "--json").stdout)
        assert runs[0]["status"] == "interrupted" and runs[0]["counts"] == counts
        final = cli("run", "customers", "--resume", "--json")
        assert final.returncode == 0, final.stderr
        assert "accepted before" in final.stderr
        assert json.loads(final.stdout)["counts"]["imported"] == n
