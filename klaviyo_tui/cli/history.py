"""`klaviyo-tui history`: past runs, and one run's counts, reasons and rejects file."""

from __future__ import annotations

import click

from klaviyo_tui.cli.context import CliContext, pass_cli
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.errors import AppError
from klaviyo_tui.events import RowState
from klaviyo_tui.redaction import printable
from klaviyo_tui.run.progress import describe_verification, plural
from klaviyo_tui.services import history as service
from klaviyo_tui.services.history import RunRecord

STATE_ORDER = [s.value for s in RowState]
#: The largest run id SQLite can hold (a signed 64-bit integer); a larger one is no run.
MAX_RUN_ID = 2**63 - 1
_RUN_HINT = "RUN is a run number from `klaviyo-tui history`."


def parse_run_id(text: str) -> int:
    """A run id as typed: ASCII digits only (not `²` or a full-width `９`, which int() and
    str.isdigit() accept), within SQLite's range. An AppError (exit 2) otherwise."""
    if not (text.isascii() and text.isdigit()):
        raise AppError(f"{text!r} is not a run id", hint=_RUN_HINT)
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_RUN_ID)) or int(digits) > MAX_RUN_ID:  # no int() of 5000 digits
        raise AppError(f"there is no run {digits}", hint="List runs with `klaviyo-tui history`.")
    return int(digits)


def _record_json(record: RunRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "run_id": record.id,  # the name `run --json` uses
        "export": record.export,
        "connection": record.connection,
        "list_id": record.list_id,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "status": record.status,
        "counts": record.counts,
        "duration_s": round(record.duration_s or 0, 3),
        "exit_code": record.exit_code,
        "error": record.error or None,  # keys masked when it was stored
        "rejects_path": record.rejects_path,
        "jobs": record.jobs,
        "dry_run": record.dry_run,
    }


@click.command()
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def history(obj: CliContext, args: tuple[str, ...], as_json: bool) -> None:
    """Past runs: `history [EXPORT]`, or `history show RUN` for one run's details.

    \b
    Examples:
      klaviyo-tui history
      klaviyo-tui history weekly --json
      klaviyo-tui history show 12
    """
    obj.as_json = as_json
    usage = AppError("usage: klaviyo-tui history [EXPORT] | history show RUN", hint=_RUN_HINT)
    if args == ("show",) and service.runs("show"):  # an export named "show": its runs
        show_runs("show", as_json=as_json)
        return
    if args and args[0] == "show":
        if len(args) != 2:
            raise usage
        show_run(parse_run_id(args[1]), as_json=as_json)
        return
    if len(args) > 1:
        raise usage
    if args and not service.runs(args[0]) and not _configured(obj, args[0]):
        raise AppError(  # a typo must not read as "no runs yet"
            f"there is no export {args[0]!r}, and no run of one by that name",
            hint="`klaviyo-tui exports list` names the exports; `klaviyo-tui history` lists "
            "every run.",
        )
    show_runs(args[0] if args else None, as_json=as_json)


def _configured(obj: CliContext, export: str) -> bool:
    """Whether the config names `export` (yes when it cannot be read: history needs no config,
    and a broken one is not this command's to report)."""
    try:
        return export in obj.config().exports
    except AppError:
        return True


#: The row states `history` can list, in the summary's order: IMPORTED always, the others when
#: a listed run has such rows, so every row of every run is in some column.
_COUNTS = (
    ("imported", "IMPORTED"),
    ("imported_with_warnings", "WARNINGS"),
    ("invalid", "INVALID"),
    ("duplicate", "DUPLICATES"),
    ("rejected_by_klaviyo", "REJECTED"),
    ("not_sent", "NOT SENT"),
    ("unconfirmed", "UNCONFIRMED"),
    ("not_in_list", "NOT IN LIST"),
    ("subscription_unconfirmed", "NOT SUBSCRIBED"),
)
#: The sync figures it can list, each when a listed run has one that is not 0.
_SYNC = (
    ("added", "ADDED"),
    ("updated", "UPDATED"),
    ("unchanged", "UNCHANGED"),
    ("removed", "REMOVED"),
    ("subscribed", "SUBSCRIBED"),
)


def _short(name: str, most: int = 24) -> str:
    """A long export name cut in the middle: names often differ only at their ends."""
    return name if len(name) <= most else f"{name[: most // 2 - 1]}…{name[-(most // 2) :]}"


def _figure(values: dict[str, object], key: str) -> str:
    value = values.get(key)
    return f"{value:,}" if isinstance(value, int) else "-"


def show_runs(export: str | None, *, as_json: bool) -> None:
    records = service.runs(export)
    syncs = service.runs_sync([r.id for r in records])
    if as_json:
        emit_json([{**_record_json(r), "sync": syncs.get(r.id, {})} for r in records])
        return
    if not records:
        say("no runs yet" + (f" for export {export!r}" if export else ""))
        return
    columns: list[tuple[str, list[str]]] = [
        ("RUN", [str(r.id) for r in records]),
        ("EXPORT", [_short(printable(r.export)) for r in records]),  # escapes count in widths
        ("STARTED", [r.started_at[:16].replace("T", " ") for r in records]),
        ("STATUS", ["dry run" if r.dry_run else r.status for r in records]),
    ]
    for key, title in _COUNTS:
        if key == "imported" or any(r.counts.get(key) for r in records):
            columns.append((title, [f"{r.counts.get(key, 0):,}" for r in records]))
    done = {r.id: {} if r.dry_run else syncs.get(r.id, {}) for r in records}  # not plans
    for key, title in _SYNC:
        if any(done[r.id].get(key) for r in records):
            columns.append((title, [_figure(done[r.id], key) for r in records]))
    widths = [max(len(title), *map(len, cells)) for title, cells in columns]
    left = {"EXPORT", "STARTED", "STATUS"}  # text; the figures line up on the right

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if title in left else c.rjust(w)
            for (title, _), c, w in zip(columns, cells, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    say(line([title for title, _ in columns]))
    for i in range(len(records)):
        say(line([cells[i] for _, cells in columns]))


def show_run(run_id: int, *, as_json: bool) -> None:
    detail = service.run_detail(run_id)
    if detail is None:
        raise AppError(f"there is no run {run_id}", hint="List runs with `klaviyo-tui history`.")
    record = detail.record
    verified = detail.verification
    if as_json:
        data = _record_json(record)
        data["reasons"] = [{"reason": r, "state": s, "count": n} for r, s, n in detail.reasons]
        data["verification"] = verified.as_dict() if verified else None
        data["resumable"] = detail.resumable
        data["sync"] = detail.sync
        data["removals"] = [
            {"profile_id": p, "state": s, "reason": why} for p, s, why in detail.removals
        ]
        emit_json(data)
        return
    say(f"run {record.id}: export {record.export} -> list {record.list_id}")
    say(f"  connection  {record.connection}")
    say(f"  started     {record.started_at}")
    say(f"  ended       {record.ended_at or '-'}")
    say(f"  status      {record.status} (exit code {record.exit_code})")
    say(f"  duration    {record.duration_s or 0:.1f}s, {plural(record.jobs, 'job')}")
    for state in STATE_ORDER:
        say(f"  {state:<24}{record.counts.get(state, 0):>12,}")
    if verified is not None:
        say(f"  verified    {describe_verification(verified.as_dict())}")
        members = f", {verified.members:,} members read" if verified.members is not None else ""
        say(f"              at {verified.verified_at}{members}")
    if record.error:
        say(f"  error       {record.error}")
    if detail.reasons:
        say("  reasons:")
        for reason, state, count in detail.reasons[:20]:
            say(f"    {count:>8,}  {state:<24} {reason}")
    _show_sync(detail)
    say(f"  rejects     {record.rejects_path or 'none'}")
    if detail.resumable:
        say(f"  resume with: klaviyo-tui run {record.export} --resume")


def _show_sync(detail: service.RunDetail) -> None:
    figures = detail.sync
    if not figures:
        return
    say(f"  sync        mode {figures.get('mode')}, incremental {figures.get('incremental')}")
    for key in ("added", "updated", "unchanged", "removed", "subscribed"):
        if isinstance(figures.get(key), int):
            say(f"  {key:<20}{figures[key]:>12,}")
    if figures.get("full_reason"):
        say(f"  every row sent once: {figures['full_reason']}")
    if figures.get("refused"):
        say(f"  refused     {figures['refused']}")
    if detail.removals:
        done = sum(1 for _, state, _ in detail.removals if state == "done")
        say(f"  removals    {done:,} of {len(detail.removals):,} done:")
        for profile_id, state, why in detail.removals[:20]:
            say(f"    {profile_id}  {state:<8} {why}")
        if len(detail.removals) > 20:
            say(f"    … and {len(detail.removals) - 20:,} more (--json lists them all)")
