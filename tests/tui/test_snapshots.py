"""SVG snapshots of every screen at 80×24, made stable: fixed config, clock, events and no blink.

Review changes in snapshot_report.html before `pytest --snapshot-update`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import (
    JobConfirmed,
    JobsPlanned,
    JobSubmitted,
    Notice,
    Phase,
    ProgressEvent,
    Reject,
    RowsRead,
    RowsRejected,
    RowState,
    RunSummary,
    Waiting,
)
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.store import history
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.secrets import store_api_key
from klaviyo_tui.store.sync_config import Subscribe, SyncSettings
from klaviyo_tui.tui.app import DemoInfo, RunHandle, make_app
from klaviyo_tui.tui.screens.builder.screen import ExportBuilderScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import SYNC_FIGURES, app_of, sample_csv, wait_until, write_sync_run

URL = "http://127.0.0.1:8765"
SIZE = (80, 24)
AT = "2026-07-01T09:30:00+00:00"


@pytest.fixture(autouse=True)
def stable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cursor blink, a fixed history clock."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(history, "_now", lambda: AT)


def write_config(csv: str = "/data/customers.csv") -> None:
    store = ConfigStore()
    store.put_connection(
        Connection(
            "acme",
            "Acme production",
            base_url=URL,
            consent_accepted_at=AT,
            consent_accepted_by="ana",
        )
    )
    store.put_segment(Segment("vip", csv, filter="tier == 'gold'"))
    store.put_export(
        Export(
            "vip",
            "acme",
            "Y6nRLr",
            ("vip",),
            Mapping(email="email", phone_number="phone", first_name="first_name"),
            list_name="VIP customers",
        )
    )
    store.save()
    store_api_key("acme", DEMO_KEY)


def write_history() -> None:
    store = HistoryStore()
    done = store.start_run(export="vip", connection="acme", list_id="Y6nRLr")
    store.add_failures(
        done,
        [
            Reject(4, "vip", "email", "broken3", "not a valid email address"),
            Reject(14, "vip", "email", "broken13", "not a valid email address"),
            Reject(9, "vip", "phone", "+1999", "Invalid phone number", RowState.REJECTED),
        ],
    )
    counts = {"imported": 24_180, "invalid": 2, "rejected_by_klaviyo": 1, "duplicate": 27}
    counts["not_sent"] = 0
    store.finish_run(done, RunSummary(done, "vip", counts, 84.0, ExitCode.PARTIAL, jobs=3))
    cut = store.start_run(export="vip", connection="acme", list_id="Y6nRLr")
    counts = {"imported": 10_000, "invalid": 0, "rejected_by_klaviyo": 0, "duplicate": 0}
    counts["not_sent"] = 14_210
    store.finish_run(cut, RunSummary(cut, "vip", counts, 12.0, ExitCode.INTERRUPTED, jobs=1))
    store.close()


RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


def home_has_run(pilot: Pilot[Any], export: str) -> bool:
    """Home is up and has loaded `export`'s last run."""
    home = pilot.app.screen
    return isinstance(home, HomeScreen) and export in home.last_runs


async def settle(pilot: Pilot[Any]) -> None:
    app = app_of(pilot)
    await wait_until(pilot, lambda: bool(app.config.connections) or app.config_error is not None)
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_home(snap_compare) -> None:
    write_config()
    write_history()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await wait_until(pilot, lambda: home_has_run(pilot, "vip"))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_connection_form_demo_first_launch(snap_compare) -> None:
    demo = DemoInfo(URL, DEMO_KEY, Path("/tmp/demo/customers.csv"))

    async def run_before(pilot: Pilot[Any]) -> None:
        backend = None
        await wait_until(pilot, lambda: pilot.app.screen.query("#backend").results() is not None)
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#backend")))
        backend = pilot.app.screen.query_one("#backend", Static)
        await wait_until(pilot, lambda: "Key storage" in str(backend.render()))
        await pilot.press("f2")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(demo=demo), terminal_size=SIZE, run_before=run_before)


def test_consent(snap_compare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#display-name")))
        screen = pilot.app.screen
        screen.query_one("#display-name", Input).value = "Acme production"
        screen.query_one("#key", Input).value = DEMO_KEY
        screen.query_one("#display-name", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#accept")))
        await pilot.click("#accept")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_verify_missing_nothing(snap_compare, sandbox) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#display-name")))
        screen = pilot.app.screen
        screen.query_one("#display-name", Input).value = "Acme production"
        screen.query_one("#key", Input).value = DEMO_KEY
        screen.query_one("#base-url", Input).value = sandbox.base_url
        screen.query_one("#display-name", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#accept")))
        await pilot.click("#accept")
        await pilot.click("#accept-button")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#save")))
        save = pilot.app.screen.query_one("#save")
        await wait_until(pilot, lambda: not save.disabled)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def _builder(tab: str, path: str) -> RunBefore:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = app_of(pilot)
        app.edit_export("vip")
        await wait_until(pilot, lambda: bool(app.screen.query("#tabs")))
        builder = app.screen
        assert isinstance(builder, ExportBuilderScreen)
        status = builder.query_one("#source-status")
        # the source loads first, so the focus the tab picks does not depend on timing
        await wait_until(pilot, lambda: builder.frame is not None or "What" in str(status.render()))
        builder.show_tab(tab)
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: "…" not in str(builder.query_one("#count").render()))
        await app.workers.wait_for_complete()
        await pilot.pause()

    del path
    return run_before


def test_builder_columns(snap_compare, tmp_path: Path) -> None:
    csv = sample_csv(tmp_path / "customers.csv")
    write_config(str(csv))
    run_before = _builder("tab-columns", str(csv))
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_builder_check(snap_compare, tmp_path: Path) -> None:
    csv = sample_csv(tmp_path / "customers.csv")
    write_config(str(csv))
    run_before = _builder("tab-check", str(csv))
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_builder_source_error(snap_compare) -> None:
    write_config("/nonexistent/customers.csv")
    run_before = _builder("tab-source", "/nonexistent/customers.csv")
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_builder_filter_error(snap_compare, tmp_path: Path) -> None:
    sample_csv(tmp_path / "customers.csv")
    write_config("customers.csv")  # relative to the test's folder: the path on screen is stable
    run_before = _builder("tab-source", "customers.csv")

    async def caret(pilot: Pilot[Any]) -> None:
        await run_before(pilot)
        builder = pilot.app.screen
        builder.query_one("#filter", Input).value = "tier == 'gold' and"
        count = builder.query_one("#count")
        await wait_until(pilot, lambda: "not valid" in str(count.render()), tries=800)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=caret)


def test_builder_connection_removed(snap_compare, tmp_path: Path) -> None:
    csv = sample_csv(tmp_path / "customers.csv")
    write_config(str(csv))
    store = ConfigStore()
    store.remove_connection("acme")
    store.save()
    store = ConfigStore()
    store.put_connection(Connection("other", "Other account", base_url=URL, consent_accepted_at=AT))
    store.save()
    run_before = _builder("tab-list", str(csv))
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def mid_upload() -> RunHandle:
    progress = RunProgress("vip")
    events: list[ProgressEvent] = [
        Phase("reading", "customers.csv"),
        RowsRead(25_000, 24_210, 640, 150),
        JobsPlanned(3, 24_210, 24_210),
        Phase("uploading", "3 bulk import jobs"),
        JobSubmitted("j1", 1, 10_000),
        JobSubmitted("j2", 2, 10_000),
        Waiting(1.5, "rate limit: 10 bulk import jobs per second"),
        JobConfirmed("j1", 1, 9_990, 10),
        RowsRejected(10, "Invalid phone number"),
        Notice("job j2 still processing"),
    ]
    for event in events:
        progress.apply(event)
    confirmed, progress.confirmed = progress.confirmed, 0
    progress.sample(0.0)
    progress.confirmed = confirmed
    progress.sample(confirmed / 4_000)  # 4,000 profiles/s so far
    progress.rates.clear()
    progress.rates.extend([0, 800, 2_400, 3_900, 4_100, 3_700, 4_300, 4_000])
    return RunHandle("vip", progress)


def test_run_mid_upload(snap_compare) -> None:
    write_config()

    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.run import RunScreen

        await settle(pilot)
        await pilot.app.push_screen(RunScreen(mid_upload()))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_history(snap_compare) -> None:
    write_config()
    write_history()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("h")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#runs")))
        table = pilot.app.screen.query_one("#runs", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_run_detail(snap_compare) -> None:
    write_config()
    write_history()

    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.history import RunDetailScreen

        await settle(pilot)
        await pilot.app.push_screen(RunDetailScreen(1))
        reasons = pilot.app.screen.query_one("#reasons", DataTable)
        await wait_until(pilot, lambda: reasons.row_count > 0)
        pilot.app.screen.query_one("#csv-path", Input).value = "rejects.csv"
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare) -> None:
    write_config()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_list_picker(snap_compare, sandbox) -> None:
    from tests.support.tui import add_sandbox_connection, create_lists

    add_sandbox_connection(sandbox.base_url)
    create_lists(sandbox.base_url, ["Newsletter", "VIP customers", "Winback 2026"])

    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.pickers import ListPickerScreen

        await settle(pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#pick-list")))
        pilot.app.screen.query_one("#name", Input).value = "vip"
        await pilot.click("#pick-list")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ListPickerScreen))
        picker = pilot.app.screen
        await wait_until(pilot, lambda: "3 of 3" in str(picker.query_one("#status").render()))
        await pilot.press("V", "I", "P")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_builder_discard_prompt(snap_compare) -> None:
    write_config()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#name")))
        await pilot.press("n", "e", "w")
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#yes")))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_run_failed(snap_compare) -> None:
    write_config()

    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.run import RunScreen

        await settle(pilot)
        handle = mid_upload()
        handle.progress.error = (
            "Klaviyo refused the API key: 401 authentication_failed.\n"
            "What to do: Check the key (a private key, pk_…) and retry."
        )
        handle.progress.log.append("error: 401 authentication_failed")
        await pilot.app.push_screen(RunScreen(handle))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_consent_at_60x20(snap_compare) -> None:
    """Labels wrap and buttons keep their arrows on a small terminal."""

    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.consent import ConsentScreen

        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#display-name")))
        await pilot.app.push_screen(ConsentScreen("Acme production"))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(60, 20), run_before=run_before)


def test_home_hostile_name_and_dry_run(snap_compare) -> None:
    """A name that is markup shows as typed; a dry run newer than the last real run is named."""
    write_config()
    write_history()
    store = ConfigStore()
    mapping = Mapping(email="email")
    store.put_export(Export("[VIP] x[/]y", "acme", "Y6nRLr", ("vip",), mapping, list_name="[b]"))
    store.save()
    history_store = HistoryStore()
    dry = history_store.start_run(export="vip", connection="acme", list_id="Y6nRLr", dry_run=True)
    counts = {"imported": 0, "invalid": 0, "rejected_by_klaviyo": 0, "duplicate": 0}
    counts["not_sent"] = 0
    summary = RunSummary(dry, "vip", counts, 1.0, ExitCode.OK, dry_run=True)
    history_store.finish_run(dry, summary)
    history_store.close()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await wait_until(pilot, lambda: home_has_run(pilot, "vip"))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


# ---- sync: the builder's Sync tab, a sync run's end, a refusal, a run's removals ---------------


def test_builder_sync(snap_compare, tmp_path: Path) -> None:
    """An incremental mirror export with limits, subscribed to email, verified by a sample."""
    csv = sample_csv(tmp_path / "customers.csv")
    write_config(str(csv))
    store = ConfigStore()
    subscribe = Subscribe("email", None, False, AT, "ana")
    sync = SyncSettings("mirror", True, 0.05, 500, subscribe)
    store.put_export(
        dataclasses.replace(store.config.exports["vip"], sync=sync, verify="sample:500")
    )
    store.save()
    run_before = _builder("tab-sync", str(csv))
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def _finished_run(summary: RunSummary) -> RunBefore:
    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.run import RunScreen

        await settle(pilot)
        handle = mid_upload()
        handle.progress.apply(summary)
        await pilot.app.push_screen(RunScreen(handle))
        await pilot.pause()

    return run_before


def test_run_sync_finished(snap_compare) -> None:
    write_config()
    counts = {"imported": 24_178, "not_in_list": 2, "invalid": 640, "duplicate": 150}
    verification = {"mode": "full", "checked": 24_180, "in_list": 24_178, "missing": 2}
    summary = RunSummary(7, "vip", counts, 84.0, ExitCode.PARTIAL, jobs=3, sync=SYNC_FIGURES)
    summary = dataclasses.replace(summary, verification=verification)
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_finished_run(summary))


def test_run_mirror_refused(snap_compare) -> None:
    write_config()
    refused = (
        "the mirror run of export 'vip' would remove 3,120 of the list's 24,180 members "
        "(12.9%), more than max_removal_ratio 0.1 allows (2,418); nothing was sent"
    )
    figures = {"mode": "mirror", "incremental": True, "removed": 0, "leavers": 3_120}
    summary = RunSummary(7, "vip", {"invalid": 640}, 4.0, ExitCode.USAGE, error=refused)
    summary = dataclasses.replace(summary, sync=figures)
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_finished_run(summary))


def test_run_detail_sync(snap_compare) -> None:
    write_config()
    run_id = write_sync_run()

    async def run_before(pilot: Pilot[Any]) -> None:
        from klaviyo_tui.tui.screens.history import RunDetailScreen

        await settle(pilot)
        await pilot.app.push_screen(RunDetailScreen(run_id))
        removals = pilot.app.screen.query_one("#removals", DataTable)
        await wait_until(pilot, lambda: removals.row_count > 0)
        pilot.app.screen.query_one("#csv-path", Input).value = "rejects.csv"
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
