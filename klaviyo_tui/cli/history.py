"""`klaviyo-tui history`: past runs, and one run's counts, reasons and rejects file."""

from __future__ import annotations

import click
import orjson

from klaviyo_tui.cli.output import fail
from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RowState
from klaviyo_tui.store.history import HistoryStore, RunRecord

STATE_ORDER = [s.value for s in RowState]


def _record_json(record: RunRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "export": record.export,
        "connection": record.connection,
        "list_id": record.list_id,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "status": record.status,
        "counts": record.counts,
        "duration_s": round(record.duration_s or 0, 3),
        "exit_code": record.exit_code,
        "error": record.error,
        "rejects_path": record.rejects_path,
        "jobs": record.jobs,
        "dry_run": record.dry_run,
    }


def show_runs(export: str | None, *, as_json: bool) -> None:
    store = HistoryStore()
    try:
        records = store.runs(export)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps([_record_json(r) for r in records]).decode())
        return
    if not records:
        click.echo("no runs yet" + (f" for export {export!r}" if export else ""))
        return
    header = f"{'RUN':>5}  {'EXPORT':<20} {'STARTED':<20} {'STATUS':<12} {'IMPORTED':>9} "
    header += f"{'INVALID':>8} {'REJECTED':>9} {'NOT SENT':>9}"
    click.echo(header)
    for r in records:
        c = r.counts
        click.echo(
            f"{r.id:>5}  {r.export[:20]:<20} {r.started_at[:19].replace('T', ' '):<20} "
            f"{'dry run' if r.dry_run else r.status:<12} {c.get('imported', 0):>9,} "
            f"{c.get('invalid', 0):>8,} "
            f"{c.get('rejected_by_klaviyo', 0):>9,} {c.get('not_sent', 0):>9,}"
        )


def show_run(run_id: int, *, as_json: bool) -> None:
    store = HistoryStore()
    try:
        record = store.run(run_id)
        if record is None:
            fail(f"no run {run_id}; list runs with `klaviyo-tui history`", ExitCode.USAGE)
        reasons = store.failure_reasons(run_id)
    finally:
        store.close()
    if as_json:
        data = _record_json(record)
        data["reasons"] = [{"reason": r, "state": s, "count": n} for r, s, n in reasons]
        click.echo(orjson.dumps(data).decode())
        return
    click.echo(f"run {record.id}: export {record.export} -> list {record.list_id}")
    click.echo(f"  connection  {record.connection}")
    click.echo(f"  started     {record.started_at}")
    click.echo(f"  ended       {record.ended_at or '-'}")
    click.echo(f"  status      {record.status} (exit code {record.exit_code})")
    click.echo(f"  duration    {record.duration_s or 0:.1f}s, {record.jobs} jobs")
    for state in STATE_ORDER:
        click.echo(f"  {state:<20}{record.counts.get(state, 0):>12,}")
    if record.error:
        click.echo(f"  error       {record.error}")
    if reasons:
        click.echo("  reasons:")
        for reason, state, count in reasons[:20]:
            click.echo(f"    {count:>8,}  {state:<20} {reason}")
    click.echo(f"  rejects     {record.rejects_path or 'none'}")
    if record.status == "interrupted":
        click.echo(f"  resume with: klaviyo-tui run {record.export} --resume")
