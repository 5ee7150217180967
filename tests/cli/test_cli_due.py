"""`run --due` in real subprocesses: the run flags reach every due export, flags that name one
export's run are refused, and under --json every due export has its object on stdout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import tomlkit

from klaviyo_tui.sandbox.server import SandboxServer
from tests.cli.test_cli import cli, rows
from tests.support.engine import create_list, import_jobs, write_config, write_customers


@pytest.fixture
def due(tmp_path: Path, sandbox: SandboxServer) -> Path:
    """Export `customers`, scheduled every minute and never run: due now."""
    config = Path(os.environ["KLAVIYO_TUI_CONFIG"])
    write_config(
        config,
        base_url=sandbox.base_url,
        list_id=create_list(sandbox.base_url),
        sources={"main": write_customers(tmp_path / "c.csv", rows(5))},
        schedule="* * * * *",
    )
    return config


def test_due_dry_run_sends_nothing_and_says_so(due: Path, sandbox: SandboxServer) -> None:
    done = cli("run", "--due", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "export customers (dry run)" in done.stdout
    assert import_jobs(sandbox.base_url) == []


def test_due_passes_the_sync_options_on(due: Path, sandbox: SandboxServer) -> None:
    done = cli("run", "--due", "--dry-run", "--mode", "mirror", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dry_run"] is True
    assert summary["sync"]["mode"] == "mirror"  # the export's own mode is upsert
    assert import_jobs(sandbox.base_url) == []


@pytest.mark.parametrize(
    ("flags", "named"), [(["--resume"], "--resume"), (["--retry-failed", "1"], "--retry-failed")]
)
def test_due_refuses_flags_that_name_one_exports_run(
    due: Path, sandbox: SandboxServer, flags: list[str], named: str
) -> None:
    done = cli("run", "--due", *flags)
    assert done.returncode == 2
    assert f"--due cannot be used with {named}" in done.stderr
    assert "what to do: Name the export instead" in done.stderr
    assert "Traceback" not in done.stderr
    assert import_jobs(sandbox.base_url) == []


def test_due_json_has_an_object_for_an_export_refused_before_it_starts(due: Path) -> None:
    document = tomlkit.parse(due.read_text())
    broken = dict(document["exports"]["customers"])
    broken["connection"] = "gone"
    document["exports"]["broken"] = broken
    due.write_text(tomlkit.dumps(document))
    done = cli("run", "--due", "--dry-run", "--json")
    assert done.returncode == 2, done.stderr
    by_export = {line["export"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert sorted(by_export) == ["broken", "customers"]
    assert by_export["customers"]["dry_run"] is True
    refused = by_export["broken"]
    assert refused["exit_code"] == 2 and refused["kind"] == "RunError"
    assert "connection 'gone', which does not exist" in refused["error"]
    assert "klaviyo-tui connections add gone" in refused["hint"]
    assert "broken: export 'broken' uses connection 'gone'" in done.stderr


def test_a_due_export_another_process_is_running_is_skipped_not_failed(
    due: Path, sandbox: SandboxServer
) -> None:
    """Two cron lines overlapping: the second sees the first's run and leaves it be (exit 0)."""
    from klaviyo_tui.run.locking import export_lock

    with export_lock("customers"):  # the other cron process, mid-run
        done = cli("run", "--due", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["skipped"].startswith("export 'customers' is already running")
    assert "skipped" in done.stderr
    assert import_jobs(sandbox.base_url) == []


def test_due_with_no_config_file_is_an_error_not_nothing_due(tmp_path: Path) -> None:
    missing = tmp_path / "typo.toml"
    done = cli("--config", str(missing), "run", "--due")
    assert done.returncode == 2, done.stderr
    assert f"there is no config file at {missing}" in done.stderr
    assert "no export is due" not in done.stderr
