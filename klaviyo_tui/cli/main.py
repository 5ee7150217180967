"""The command line: the headless front end and the launchers.

Only this package parses arguments. Every command calls the service layer and prints; errors
reach one place (`KlaviyoCli.invoke`): an `AppError` prints its message and hint (a JSON object
under --json) and exits with its code, a closed stdout (`| head`) ends it quietly (exit 141),
anything else is a bug reported in one line with the traceback in the log file. Headless commands
never import textual.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from klaviyo_tui.cli.connections import connections_group
from klaviyo_tui.cli.context import CliContext, pass_cli
from klaviyo_tui.cli.exports import exports_group
from klaviyo_tui.cli.history import MAX_RUN_ID, history
from klaviyo_tui.cli.lists import lists_group
from klaviyo_tui.cli.output import (
    ProgressPrinter,
    crash,
    emit_json,
    error_json,
    fail,
    format_summary,
    output_closed,
    say,
    summary_json,
)
from klaviyo_tui.cli.sandbox import sandbox_command
from klaviyo_tui.cli.segments import segments_group
from klaviyo_tui.cli.utf8 import require_utf8
from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.events import RunSummary
from klaviyo_tui.redaction import redact
from klaviyo_tui.run.locking import RunInProgress
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Config


class KlaviyoCli(click.Group):
    """The root group: the one place where errors become messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except AppError as error:
                fail(error, as_json=_as_json(ctx))
            except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
                raise
            except Exception as error:  # a bug: one line here, the traceback in the log
                crash(error, as_json=_as_json(ctx))
        except BrokenPipeError:  # also while reporting an error: the reader is gone, not a bug
            output_closed()


def _as_json(ctx: click.Context) -> bool:
    return isinstance(ctx.obj, CliContext) and ctx.obj.as_json


def _help_config_path() -> str:
    with contextlib.suppress(Exception):
        return str(paths.config_path())
    return "the platform's user config folder"


class _ConfigOption(click.Option):
    """--config, whose help names the path in force when the help is shown (not at import)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = (
            f"Config file (default: {_help_config_path()}; KLAVIYO_TUI_CONFIG also sets it)."
        )
        return super().get_help_record(ctx)


@click.group(
    cls=KlaviyoCli,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    cls=_ConfigOption,
    type=click.Path(dir_okay=False),
    envvar="KLAVIYO_TUI_CONFIG",
)
@click.version_option(package_name="klaviyo-tui")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Export customer segments from files and databases into Klaviyo lists.

    With no command on a terminal, opens the app. Exit codes: 0 success, 1 some rows rejected or
    not sent, 2 usage or configuration error, 3 input data error, 4 authentication or permission
    error, 5 Klaviyo unavailable after retries, 70 internal error (see the log), 130 interrupted
    (resumable with --resume), 141 output closed early (`| head`).

    \b
    Examples:
      klaviyo-tui demo                  try everything against a built-in sandbox
      klaviyo-tui lists                 the account's Klaviyo lists
      klaviyo-tui exports create weekly --source customers.csv --list-name Weekly
      klaviyo-tui run weekly --dry-run  plan a run without sending anything
    """
    ctx.obj = CliContext(config_path)
    if ctx.invoked_subcommand is not None:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(ctx.get_help())
        ctx.exit(ExitCode.USAGE)
    from klaviyo_tui.tui.app import run_app

    ctx.exit(run_app(ctx.obj.config_path))


@cli.command()
def demo() -> None:
    """Try everything against a built-in sandbox Klaviyo with sample data (touches nothing real).

    \b
    Example:
      klaviyo-tui demo
    """
    from klaviyo_tui.demo.launch import run_demo

    sys.exit(run_demo())


@cli.command()
@click.argument("export_name", required=False)
@click.option("--dry-run", is_flag=True, help="Read, validate and plan; send nothing.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the last interrupted run of this export, or ask Klaviyo again about the "
    "rows it left unconfirmed.",
)
@click.option(
    "--retry-failed",
    "retry_of",
    type=click.IntRange(1, MAX_RUN_ID),  # beyond SQLite's integers there is no run
    metavar="RUN",
    help="Send again only the rows Klaviyo rejected in run RUN.",
)
@click.option(
    "--due",
    is_flag=True,
    help="Run every export whose schedule is due (for cron), each with the other run flags "
    "except --resume and --retry-failed.",
)
@click.option(
    "--confirm-timeout",
    "confirm_timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MINUTES",
    help="Stop waiting for a Klaviyo job that shows no progress this long; its rows end "
    "unconfirmed and --resume asks again (default: the export's confirm_timeout_minutes, or 30).",
)
@click.option(
    "--verify",
    "verify",
    is_flag=False,
    flag_value="full",
    default=None,
    metavar="[=full|sample:N|off]",
    help="After the run, read the list back: every member (--verify), or N random confirmed "
    "rows (--verify=sample:N). Missing rows end not_in_list. Default: the export's verify.",
)
@click.option(
    "--full", is_flag=True, help="Send every row once, even those an earlier run confirmed."
)
@click.option(
    "--mode",
    type=click.Choice(["upsert", "mirror"]),
    help="This run only: upsert (never remove) or mirror (remove who left the segment).",
)
@click.option(
    "--allow-mass-removal",
    is_flag=True,
    help="Mirror: remove even more of the list than the export's limits allow.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_cli
def run(
    obj: CliContext,
    export_name: str | None,
    dry_run: bool,
    resume: bool,
    retry_of: int | None,
    due: bool,
    confirm_timeout: float | None,
    verify: str | None,
    full: bool,
    mode: str | None,
    allow_mass_removal: bool,
    as_json: bool,
) -> None:
    """Run EXPORT now: progress on stderr, a one-line summary (or JSON) on stdout.

    \b
    Examples:
      klaviyo-tui run weekly                 send, then confirm every row
      klaviyo-tui run weekly --dry-run       counts, jobs and time at Klaviyo's limits
      klaviyo-tui run weekly --resume        continue an interrupted run, or ask Klaviyo
                                             again about unconfirmed rows
      klaviyo-tui run weekly --verify        read the whole list back after the run
      klaviyo-tui run weekly --verify=sample:500   look up 500 random confirmed rows
      klaviyo-tui run weekly --full          send every row, not only new or changed ones
      klaviyo-tui run weekly --mode mirror   also remove who left the segment (this run)
      klaviyo-tui run --due --json           every export whose schedule is due (cron)
    """
    obj.as_json = as_json
    config = obj.config()
    if due == bool(export_name):
        raise AppError(
            "give an export name or --due (every export whose schedule is due), not both"
            if export_name
            else "give an export name, or --due to run every export whose schedule is due",
            hint="See `klaviyo-tui exports list` for the names.",
        )
    if due and (resume or retry_of is not None):
        raise AppError(
            f"--due cannot be used with {'--resume' if resume else '--retry-failed'}: that "
            "continues or retries one export's run",
            hint="Name the export instead: `klaviyo-tui run EXPORT --resume` or "
            "`klaviyo-tui run EXPORT --retry-failed RUN`.",
        )
    options = RunFlags(confirm_timeout, verify)
    sync = SyncOptions(full=full, mode=mode, allow_mass_removal=allow_mass_removal)
    if due and not obj.config_path.exists():  # cron must not read a typo as "nothing is due"
        raise AppError(
            f"there is no config file at {obj.config_path}, so no export can be due",
            hint="Check --config or KLAVIYO_TUI_CONFIG in the cron line, or create an export "
            "first (`klaviyo-tui exports create`).",
        )
    if due:
        sys.exit(_run_due(config, as_json=as_json, dry_run=dry_run, flags=options, sync=sync))
    assert export_name is not None
    summary = _run_one(
        config,
        export_name,
        resume=resume,
        dry_run=dry_run,
        retry_of=retry_of,
        as_json=as_json,
        flags=options,
        sync=sync,
    )
    sys.exit(int(summary.exit_code))


@dataclass(frozen=True)
class RunFlags:
    """Per-run overrides of the export's confirmation settings (None: the export's)."""

    confirm_timeout: float | None = None
    verify: str | None = None


def _run_due(
    config: Config,
    *,
    as_json: bool,
    dry_run: bool = False,
    flags: RunFlags | None = None,
    sync: SyncOptions | None = None,
) -> int:
    """Run every due export with the same flags; one export's refusal does not stop the others
    (under --json it is one more object on stdout, so a log parser sees every due export)."""
    from klaviyo_tui.services.runs import due_exports

    due = due_exports(config, datetime.now(UTC).astimezone())
    if not due:
        say("no export is due", err=True)
        return ExitCode.OK
    worst = ExitCode.OK
    for export in due:
        try:
            summary = _run_one(
                config, export.name, dry_run=dry_run, as_json=as_json, flags=flags, sync=sync
            )
        except RunInProgress as error:  # another cron process runs it now: not a failure
            say(f"klaviyo-tui: {export.name}: skipped, {error.message}", err=True)
            if as_json:
                emit_json({"export": export.name, "skipped": redact(error.message)})
            continue
        except AppError as error:  # one export's problem does not stop the others
            say(f"klaviyo-tui: {export.name}: {error.message}", err=True)
            if as_json:
                emit_json({"export": export.name, **error_json(error)})
            worst = max(worst, error.exit_code)
            continue
        worst = max(worst, summary.exit_code)
    return int(worst)


def _run_one(
    config: Config,
    export_name: str,
    *,
    resume: bool = False,
    dry_run: bool = False,
    retry_of: int | None = None,
    as_json: bool,
    flags: RunFlags | None = None,
    sync: SyncOptions | None = None,
) -> RunSummary:
    from klaviyo_tui.services.runs import run as run_service

    flags = flags or RunFlags()
    printer = ProgressPrinter(export_name)
    stopped: list[RunSummary] = []  # the summary of a run interrupted by a signal

    async def consume() -> RunSummary:
        task = asyncio.current_task()
        assert task is not None  # a coroutine run by asyncio.run is always in a task
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)
        summary: RunSummary | None = None
        events = run_service(
            config,
            export_name,
            resume=resume,
            dry_run=dry_run,
            retry_failed_of=retry_of,
            sync=sync,
            on_wait=lambda message: say(f"klaviyo-tui: {message}", err=True),
            confirm_timeout_minutes=flags.confirm_timeout,
            verify=flags.verify,
            on_interrupted=stopped.append,
        )
        async for event in events:
            printer.event(event)
            if isinstance(event, RunSummary):
                summary = event
        assert summary is not None
        return summary

    try:
        summary = asyncio.run(consume())
    except (KeyboardInterrupt, asyncio.CancelledError):
        printer.close()
        if stopped:  # stdout still gets its one line (or JSON object), as a cron log expects
            _print_summary(stopped[0], as_json=as_json, error=False)
        say(f"interrupted; continue with: klaviyo-tui run {export_name} --resume", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    finally:
        printer.close()
    _print_summary(summary, as_json=as_json)
    return summary


def _print_summary(summary: RunSummary, *, as_json: bool, error: bool = True) -> None:
    if as_json:
        emit_json(summary_json(summary))
    else:
        say(format_summary(summary), prose=True)
    if error and summary.error:
        say(f"error: {summary.error}", err=True)
        if summary.hint:
            say(f"what to do: {summary.hint}", err=True)


cli.add_command(history)
cli.add_command(connections_group)
cli.add_command(exports_group)
cli.add_command(segments_group)
cli.add_command(lists_group)
cli.add_command(sandbox_command, name="sandbox")
require_utf8(cli)  # every command's text must be UTF-8: a usage error, not exit 70


def main(argv: Sequence[str] | None = None) -> None:
    # At exit, the interpreter's last cyclic collections would walk every object a run created
    # (pandas, pyarrow, the history store...) only for the OS to take the memory back: measured
    # 0.15-0.2 s of a 200k-row run's 3.3 s. Registered once; tests calling `main` are unaffected.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    cli.main(args=list(argv) if argv is not None else None, prog_name="klaviyo-tui")
