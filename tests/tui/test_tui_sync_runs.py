"""The run view and the run detail show what a sync run did: figures, planned removals and a
mirror's refusal, unconfirmed and not-in-list rows, the read-back, the removals one by one.

End to end against the sandbox over loopback (a mirror run refused, dry-run, then allowed), and
the words checked on folded events and on a real history file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, DataTable, Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import (
    JobConfirmed,
    JobUnconfirmed,
    ProgressEvent,
    Reject,
    RowsRead,
    RowState,
    RunSummary,
    SettledBefore,
)
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.sync_config import SyncSettings
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.history import RunDetailScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.run import RunScreen, stats_lines, summary_text, sync_lines
from tests.support.engine import list_emails
from tests.support.tui import (
    SIZE,
    SYNC_FIGURES,
    Terminal,
    add_sandbox_connection,
    create_lists,
    sample_csv,
    wait_screen,
    wait_until,
    write_sync_run,
)

REFUSED = (
    "the mirror run of export 'vip' would remove 13 of the list's 36 members (36.1%), more "
    "than max_removal_ratio 0.1 allows (3); nothing was sent"
)


def text(widget: Widget) -> str:
    """What the widget shows, as one line of words (tables of facts included)."""
    strips = widget.render_lines(Region(0, 0, *widget.size))
    return " ".join("".join(seg.text for strip in strips for seg in strip).split())


async def shows(pilot: Pilot[Any], widget: Widget, *needles: str) -> str:
    """The widget's words once they hold every needle. A Static updated as the run ends is drawn
    at the next layout, so reading it at once can find it empty (as CI once did)."""
    try:
        await wait_until(pilot, lambda: all(n in text(widget) for n in needles))
    except AssertionError:
        raise AssertionError(f"{needles!r} not shown in {text(widget)!r}") from None
    return text(widget)


def folded(*events: ProgressEvent) -> RunProgress:
    progress = RunProgress("vip")
    for event in events:
        progress.apply(event)
    return progress


# ---- the words, on folded events ----------------------------------------------------------------


def test_unconfirmed_and_not_in_list_rows_are_counted_where_klaviyo_is() -> None:
    p = folded(
        RowsRead(100, 100, 0, 0),
        JobConfirmed("j1", 0, 50, 0),
        JobUnconfirmed("j2", 1, 50, "no progress for 30 minutes"),
    )
    assert p.unconfirmed == 50
    rows, _ = stats_lines(p)
    assert "confirmed 50 · rejected 0 · unconfirmed 50" in rows.plain
    assert "not in list" not in rows.plain
    counts = {"imported": 48, "not_in_list": 2, "unconfirmed": 50}
    p.apply(RunSummary(1, "vip", counts, 9.0, ExitCode.PARTIAL))
    rows, _ = stats_lines(p)
    assert "unconfirmed 50 · not in list 2" in rows.plain


def test_a_resumed_run_shows_the_rows_the_interrupted_run_had_confirmed() -> None:
    p = folded(
        SettledBefore(0, 10_000, "j0"),
        SettledBefore(1, 10_000, "j1"),
        RowsRead(25_000, 25_000, 0, 0),
        JobConfirmed("j2", 2, 5_000, 0),
    )
    rows, _ = stats_lines(p)
    assert "confirmed 5,000 · rejected 0 · done before 20,000" in rows.plain


def test_a_finished_sync_run_shows_its_figures_and_read_back() -> None:
    verification = {"mode": "full", "checked": 24_180, "in_list": 24_180, "missing": 0}
    summary = RunSummary(1, "vip", {"imported": 150}, 9.0, ExitCode.OK, sync=SYNC_FIGURES)
    p = folded(dataclasses.replace(summary, verification=verification))
    assert sync_lines(p, None) == [
        (
            "Sync",
            "mirror · added 120 · updated 30 · unchanged 24,030 · removed 12 · subscribed 150",
        ),
        ("Verify", "verified: 24,180 in the list, 0 missing"),
    ]
    why = "the mapping changed since the last confirmed run"
    full = dataclasses.replace(summary, sync={**SYNC_FIGURES, "full_reason": why})
    assert ("", f"every row sent once: {why}") in sync_lines(folded(full), None)
    first = dataclasses.replace(summary, sync={**SYNC_FIGURES, "full_reason": "no earlier run"})
    assert len(sync_lines(folded(first), None)) == 1  # a first run sends all: no line for it
    plain = RunSummary(2, "vip", {"imported": 1}, 1.0, ExitCode.OK, sync={"mode": "upsert"})
    assert sync_lines(folded(plain), None) == []  # a plain upsert run says nothing about sync


def test_a_refused_mirror_run_says_why_and_what_to_do() -> None:
    figures = {"mode": "mirror", "incremental": True, "added": 0, "removed": 0, "leavers": 13}
    summary = RunSummary(3, "vip", {"invalid": 4}, 1.0, ExitCode.USAGE, error=REFUSED, sync=figures)
    words = " ".join(summary_text(folded(summary)).plain.split())
    assert "Stopped after 1s: the removals exceed the export's limits." in words
    assert f"Refused: {REFUSED}" in words
    assert "press a to run once allowing them" in words
    assert ("", "13 profiles left the segment; 0 removed from the list.") in sync_lines(
        folded(summary), None
    )
    other = RunSummary(4, "vip", {}, 1.0, ExitCode.USAGE, error="unknown list", sync=figures)
    assert "Refused" not in summary_text(folded(other)).plain  # another configuration problem


# ---- end to end ---------------------------------------------------------------------------------


def mirror_export(base_url: str, csv: Path) -> str:
    add_sandbox_connection(base_url)
    [list_id] = create_lists(base_url, ["VIP"])
    store = ConfigStore()
    store.put_segment(Segment("vip", str(csv)))
    sync = SyncSettings(mode="mirror", incremental=True)
    mapping = Mapping(email="email")
    store.put_export(Export("vip", "sandbox", list_id, ("vip",), mapping, sync=sync))
    store.save()
    return list_id


async def test_mirror_refused_dry_run_then_allowed_and_its_removals(
    sandbox, tmp_path: Path
) -> None:
    csv = sample_csv(tmp_path / "customers.csv", rows=40)  # 36 valid emails
    list_id = mirror_export(sandbox.base_url, csv)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        first = app.start_run("vip")
        assert first is not None
        await wait_until(pilot, lambda: first.progress.finished and not first.active, 1500)
        assert first.progress.summary is not None
        assert first.progress.summary.exit_code == ExitCode.OK
        await pilot.press("escape")
        await wait_screen(pilot, HomeScreen)

        sample_csv(csv, rows=26)  # 13 customers left the segment: more than 10% of 36
        refused = app.start_run("vip")
        assert refused is not None
        await wait_until(pilot, lambda: refused.progress.finished and not refused.active, 1500)
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_until(pilot, lambda: run.has_class("-finished"))
        summary = run.query_one("#summary", Static)
        await shows(pilot, summary, "Refused: the mirror run of export 'vip' would remove 13")
        await shows(
            pilot, run.query_one("#sync", Static), "13 profiles left the segment; 0 removed"
        )
        assert len(list_emails(sandbox.base_url, list_id)) == 36  # nothing removed
        await pilot.press("escape")
        await wait_screen(pilot, HomeScreen)

        await pilot.press("d")  # a dry run: the plan, nothing sent
        await wait_screen(pilot, RunScreen)
        dry = app.screen
        await wait_until(pilot, lambda: dry.has_class("-finished"), 1500)
        assert "(dry run)" in str(dry.query_one("#run-title").render())
        await shows(pilot, dry.query_one("#summary", Static), "Dry run: nothing was sent.")
        await shows(
            pilot,
            dry.query_one("#sync", Static),
            "to add 0 · to update 0 · unchanged 23",
            "13 profiles left the segment and would be removed from the list",
        )

        await pilot.press("a")  # run once past the limits, after a yes
        await wait_screen(pilot, ConfirmModal)
        modal = app.screen
        await wait_until(
            pilot, lambda: any("remove 13 profiles" in text(w) for w in modal.query(Static))
        )
        await pilot.press("y")
        await wait_until(pilot, lambda: app.runs["vip"].kind == "allow")
        allowed = app.runs["vip"]
        await wait_until(pilot, lambda: allowed.progress.finished and not allowed.active, 1500)
        assert allowed.progress.summary is not None
        assert allowed.progress.summary.exit_code == ExitCode.OK
        run = app.screen
        assert isinstance(run, RunScreen) and run.handle is allowed
        await wait_until(pilot, lambda: run.has_class("-finished"))
        await shows(pilot, run.query_one("#sync", Static), "removed 13")
        assert len(list_emails(sandbox.base_url, list_id)) == 23

        await pilot.press("o")
        await wait_screen(pilot, RunDetailScreen)
        removals = app.screen.query_one("#removals", DataTable)
        await wait_until(pilot, lambda: removals.row_count == 13)
        assert "left the segment" in [c.plain for c in removals.get_row_at(0)]


async def test_run_detail_lists_removals_and_the_read_back_at_80x24() -> None:
    store = ConfigStore()
    store.put_connection(Connection("acme", "Acme", base_url="http://127.0.0.1:9"))
    store.put_segment(Segment("vip", "/data/customers.csv"))
    store.put_export(Export("vip", "acme", "Y6nRLr", ("vip",), Mapping(email="email")))
    store.save()
    run_id = write_sync_run(removals=25)
    history = HistoryStore()
    long = Reject(9, "vip", "email", "a@b.c", "x" * 200, RowState.NOT_IN_LIST)
    history.add_failures(run_id, [long])
    history.close()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        terminal = Terminal(app)
        await app.push_screen(RunDetailScreen(run_id))
        detail = app.screen
        removals = detail.query_one("#removals", DataTable)
        await wait_until(pilot, lambda: removals.row_count == 25)
        await shows(
            pilot,
            detail.query_one("#detail-sync", Static),
            "Sync mirror · added 120 · updated 30 · unchanged 24,030 · removed 25",
            "Verify verified: 24,178 in the list, 2 missing · 24,500 members read",
        )
        title = str(detail.query_one("#removals-title").render())
        assert title == "Removed from the list: 20 of 25 profiles done"
        assert removals.size.height <= 8 < removals.virtual_size.height  # it scrolls
        assert removals.virtual_size.width <= removals.size.width  # cut to fit, not scrolled
        reasons = detail.query_one("#reasons", DataTable)  # also once the page scrolls
        body = detail.query_one("#detail-body")
        # the reasons arrive from a worker: on a loaded machine, after the first pause
        await wait_until(pilot, lambda: reasons.row_count > 0)
        try:  # CI once timed out here: if it does again, say what the page looked like
            await wait_until(pilot, lambda: body.show_vertical_scrollbar)
        except AssertionError:
            raise AssertionError(
                f"no scrollbar: body {body.size} holds {body.virtual_size}; screens "
                f"{[type(s).__name__ for s in app.screen_stack]}; reasons {reasons.row_count}"
            ) from None
        assert reasons.virtual_size.width <= reasons.size.width
        assert not detail.query_one("#retry", Button).display  # not_in_list is not retried
        detail.query_one("#detail-body").scroll_end(animate=False)
        await pilot.pause()
        detail.refresh()
        await pilot.pause()
        assert "01PROFILE00000  done" in terminal.text()
