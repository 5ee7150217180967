"""The command line: the headless front end (run, history, connections, exports) and the launchers.

Only this module parses arguments. Headless commands never import textual: the TUI and the demo
are imported inside their own commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import click
import orjson

from klaviyo_tui.cli.admin import connections_group, exports_group
from klaviyo_tui.cli.output import ProgressPrinter, fail, format_summary, redactor
from klaviyo_tui.cli.sandbox import sandbox_command
from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RunSummary
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Config, ConfigError, Export, load_config


class _Context:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = paths.config_path(config_path)

    def config(self) -> Config:
        try:
            return load_config(self.config_path)
        except ConfigError as error:
            fail(str(error), ExitCode.USAGE)
            raise AssertionError("unreachable") from error


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="KLAVIYO_TUI_CONFIG",
    help="Config file (default: the platform's user config dir).",
)
@click.version_option(package_name="klaviyo-tui")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Export customer segments from files and databases into Klaviyo lists.

    With no command on a terminal, opens the app. Exit codes: 0 success, 1 some rows rejected or
    not sent, 2 usage or configuration error, 3 input data error, 4 authentication or permission
    error, 5 Klaviyo unavailable after retries, 130 interrupted (resumable with --resume).
    """
    ctx.obj = _Context(config_path)
    if ctx.invoked_subcommand is not None:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(ctx.get_help())
        ctx.exit(ExitCode.USAGE)
    from klaviyo_tui.tui.app import run_app

    ctx.exit(run_app(ctx.obj.config_path))


@cli.command()
def demo() -> None:
    """Try everything against a built-in sandbox Klaviyo with sample data (touches nothing real)."""
    from klaviyo_tui.demo.launch import run_demo

    sys.exit(run_demo())


@cli.command()
@click.argument("export_name", required=False)
@click.option("--dry-run", is_flag=True, help="Read, validate and plan; send nothing.")
@click.option("--resume", is_flag=True, help="Continue the last interrupted run of this export.")
@click.option("--due", is_flag=True, help="Run every export whose schedule is due (for cron).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_obj
def run(
    obj: _Context, export_name: str | None, dry_run: bool, resume: bool, due: bool, as_json: bool
) -> None:
    """Run EXPORT now: progress on stderr, a one-line summary on stdout."""
    config = obj.config()
    if due == bool(export_name):
        fail("give an export name, or --due to run every export whose schedule is due", 2)
    if due:
        sys.exit(_run_due(config, as_json=as_json))
    assert export_name is not None
    export = config.exports.get(export_name)
    if export is None:
        known = ", ".join(sorted(config.exports)) or "none yet"
        fail(f"no export named {export_name!r} in {obj.config_path} (exports: {known})", 2)
        return
    summary = _run_one(config, export, resume=resume, dry_run=dry_run, as_json=as_json)
    sys.exit(int(summary.exit_code))


def _run_due(config: Config, *, as_json: bool) -> int:
    from klaviyo_tui.run.schedule import is_due
    from klaviyo_tui.store.history import HistoryStore

    now = datetime.now(UTC).astimezone()
    store = HistoryStore()
    try:
        due = []
        for export in config.exports.values():
            if not export.schedule:
                continue
            runs = [r for r in store.runs(export.name, limit=20) if not r.dry_run]
            last = runs[0].started if runs else None
            if is_due(export.schedule, last, now):
                due.append(export)
    finally:
        store.close()
    if not due:
        click.echo("no export is due", err=True)
        return ExitCode.OK
    worst = ExitCode.OK
    for export in due:
        summary = _run_one(config, export, resume=False, dry_run=False, as_json=as_json)
        worst = max(worst, summary.exit_code)
    return int(worst)


def _run_one(
    config: Config, export: Export, *, resume: bool, dry_run: bool, as_json: bool
) -> RunSummary:
    from klaviyo_tui.errors import RunError
    from klaviyo_tui.run.engine import check_runnable, run_export
    from klaviyo_tui.run.locking import RunInProgress
    from klaviyo_tui.store.history import HistoryStore
    from klaviyo_tui.store.secrets import get_api_key

    try:
        check_runnable(export, config)
    except RunError as error:
        fail(str(error), error.exit_code)
    lookup = get_api_key(export.connection)
    if not lookup.key:
        fail(
            f"no API key for connection {export.connection!r}: "
            + (lookup.hint or "set KLAVIYO_API_KEY or store one with `connections add`"),
            ExitCode.AUTH,
        )
    key = lookup.key
    assert key is not None
    redact = redactor(key)
    printer = ProgressPrinter(export.name, redact=redact)
    store = HistoryStore()

    async def consume() -> RunSummary:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        summary: RunSummary | None = None
        async for event in run_export(
            export, config=config, api_key=key, store=store, resume=resume, dry_run=dry_run
        ):
            if isinstance(event, RunSummary):
                summary = event
            else:
                printer.event(event)
        assert summary is not None
        return summary

    try:
        summary = asyncio.run(consume())
    except RunInProgress as error:
        fail(redact(str(error)), ExitCode.USAGE)
        raise
    except RunError as error:
        fail(redact(str(error)), error.exit_code)
        raise
    except (KeyboardInterrupt, asyncio.CancelledError):
        printer.close()
        click.echo(f"interrupted; continue with: klaviyo-tui run {export.name} --resume", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    finally:
        store.close()
    printer.close()
    if as_json:
        click.echo(orjson.dumps(_summary_json(summary)).decode())
    else:
        click.echo(redact(format_summary(summary)))
    if summary.error:
        click.echo(redact(f"error: {summary.error}"), err=True)
    return summary


def _summary_json(summary: RunSummary) -> dict[str, object]:
    return {
        "run_id": summary.run_id,
        "export": summary.export,
        "counts": summary.counts,
        "duration_s": round(summary.duration_s, 3),
        "exit_code": int(summary.exit_code),
        "jobs": summary.jobs,
        "dry_run": summary.dry_run,
        "rejects_path": str(summary.rejects_path) if summary.rejects_path else None,
        "error": summary.error,
        **({"plan": summary.plan} if summary.dry_run else {}),
    }


@cli.command(context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def history(args: tuple[str, ...], as_json: bool) -> None:
    """Past runs: `history [EXPORT]`, or `history show RUN` for one run's details."""
    from klaviyo_tui.cli.history import show_run, show_runs

    if args and args[0] == "show":
        if len(args) != 2 or not args[1].isdigit():
            fail("usage: klaviyo-tui history show RUN (a run number from `klaviyo-tui history`)", 2)
        show_run(int(args[1]), as_json=as_json)
        return
    if len(args) > 1:
        fail("usage: klaviyo-tui history [EXPORT] | history show RUN", 2)
    show_runs(args[0] if args else None, as_json=as_json)


cli.add_command(connections_group)
cli.add_command(exports_group)
cli.add_command(sandbox_command, name="sandbox")


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="klaviyo-tui")
