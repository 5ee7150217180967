"""Errors a user can cause end in a message that says what to do, never a traceback.

Real sandbox over loopback; the faults (list deleted, key revoked, Klaviyo down) are made the way
they happen in life: through the API, or by the sandbox no longer accepting the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.dialogs import ErrorModal
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.pickers import ListPickerScreen
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.tui import (
    SIZE,
    add_sandbox_connection,
    app_of,
    create_lists,
    delete_list,
    sample_csv,
    screen_of,
    type_into,
    wait_screen,
    wait_until,
)


def save_export(csv: Path, list_id: str, *, email: str = "email") -> None:
    store = ConfigStore()
    store.put_segment(Segment("vip", str(csv)))
    store.put_export(Export("vip", "sandbox", list_id, ("vip",), Mapping(email=email)))
    store.save()


def text(widget: Static) -> str:
    return str(widget.render())


async def open_source_tab(pilot: Pilot[Any]) -> ExportBuilderScreen:
    app = app_of(pilot)
    await wait_screen(pilot, HomeScreen)
    await wait_until(pilot, lambda: bool(app.config.connections))
    await pilot.press("n")
    await wait_screen(pilot, ExportBuilderScreen)
    builder = screen_of(pilot, ExportBuilderScreen)
    builder.show_tab("tab-source")
    await pilot.pause()
    return builder


GARBAGE = {
    "garbage.parquet": b"\x00\x01not parquet at all\xff\xfe" * 50,
    "empty.csv": b"",
    "binary.xlsx": b"PK\x03\x04 this is no workbook",
    "broken.jsonl": b'{"email": "a@b.co"}\n{not json\n',
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
async def test_unreadable_source_shows_what_to_do(tmp_path: Path, name: str) -> None:
    add_sandbox_connection("http://127.0.0.1:9")  # never contacted here
    bad = tmp_path / name
    bad.write_bytes(GARBAGE[name])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await open_source_tab(pilot)
        await type_into(pilot, "#path", str(bad))
        await pilot.click("#load")
        status = builder.query_one("#source-status", Static)
        await wait_until(pilot, lambda: "What to do" in text(status), tries=1500)
        assert "Could not read the source" in text(status)
        assert builder.frame is None
        assert "Traceback" not in text(status)
        assert not isinstance(app.screen, ErrorModal)
        # saving names the missing step instead of failing
        builder.query_one("#name", Input).value = "vip"
        builder.list_id = "Y6nRLr"
        await pilot.click("#save")
        assert "Load the source" in text(builder.query_one("#save-error", Static))
        assert app.screen is builder


async def test_missing_file_then_good_file_clears_the_error(tmp_path: Path) -> None:
    add_sandbox_connection("http://127.0.0.1:9")
    csv = sample_csv(tmp_path / "customers.csv")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await open_source_tab(pilot)
        status = builder.query_one("#source-status", Static)
        await type_into(pilot, "#path", str(tmp_path / "nope.csv"))
        await pilot.click("#load")
        await wait_until(pilot, lambda: "file not found" in text(status), tries=1500)
        await type_into(pilot, "#path", str(csv))
        builder.query_one("#load", Button).press()  # a toast from the first error may sit on top
        await wait_until(pilot, lambda: builder.frame is not None, tries=3000)
        assert "email column: email" in text(status)
        assert not status.has_class("error-text")


async def test_bad_filter_is_explained_in_the_builder(tmp_path: Path) -> None:
    add_sandbox_connection("http://127.0.0.1:9")
    csv = sample_csv(tmp_path / "customers.csv")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await open_source_tab(pilot)
        await type_into(pilot, "#path", str(csv))
        await pilot.click("#load")
        await wait_until(pilot, lambda: builder.frame is not None, tries=1500)
        count = builder.query_one("#count", Static)
        for bad in ("tier == 'gold' and", "tir == 'gold'"):
            await type_into(pilot, "#filter", bad)
            await wait_until(pilot, lambda: "not valid" in text(count), tries=800)
            message = text(count)
            assert "What to do" in message
            # every column is listed, not only the ones the filter names
            assert "email" in message and "tier" in message
            assert count.has_class("error-text")
        builder.query_one("#name", Input).value = "vip"
        builder.list_id = "Y6nRLr"
        await pilot.click("#save")  # not saved with a filter that cannot run
        assert "Fix the filter" in text(builder.query_one("#save-error", Static))
        assert app.screen is builder
        await type_into(pilot, "#filter", "tier == 'gold'")
        await wait_until(pilot, lambda: "rows match" in text(count), tries=800)
        assert not count.has_class("error-text")


async def run_and_wait(pilot: Pilot[Any], export: str = "vip") -> RunScreen:
    app = app_of(pilot)
    await wait_screen(pilot, HomeScreen)
    await wait_until(pilot, lambda: export in app.config.exports)
    handle = app.start_run(export)
    assert handle is not None
    await wait_screen(pilot, RunScreen)
    await wait_until(pilot, lambda: not handle.active, tries=3000)
    await pilot.pause()
    return screen_of(pilot, RunScreen)


async def test_list_deleted_before_the_run(sandbox, tmp_path: Path) -> None:
    add_sandbox_connection(sandbox.base_url)
    [list_id] = create_lists(sandbox.base_url, ["VIP"])
    save_export(sample_csv(tmp_path / "customers.csv"), list_id)
    delete_list(sandbox.base_url, list_id)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        run = await run_and_wait(pilot)
        assert run.has_class("-failed")
        summary = text(run.query_one("#summary", Static))
        assert list_id in summary or "not found" in summary.lower(), summary
        assert "Traceback" not in summary
        assert not isinstance(app.screen, ErrorModal)


async def test_key_revoked_mid_run_fails_and_history_says_so(tmp_path: Path) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=1.0)
    with SandboxServer(settings) as server:
        add_sandbox_connection(server.base_url)
        [list_id] = create_lists(server.base_url, ["VIP"])
        save_export(sample_csv(tmp_path / "customers.csv", rows=25_000), list_id)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_screen(pilot, HomeScreen)
            await wait_until(pilot, lambda: "vip" in app.config.exports)
            handle = app.start_run("vip")
            assert handle is not None
            await wait_until(pilot, lambda: handle.progress.jobs_submitted > 0, tries=3000)
            server.app.keys.pop(DEMO_KEY)  # revoked in Klaviyo while jobs are processing
            await wait_until(pilot, lambda: not handle.active, tries=3000)
            await pilot.pause()
            run = app.screen
            assert isinstance(run, RunScreen)
            assert run.has_class("-failed")
            summary = text(run.query_one("#summary", Static))
            assert "Traceback" not in summary
            assert "key" in summary.lower() or "auth" in summary.lower()
    [record] = HistoryStore().runs("vip")
    assert record.status == "failed"


@pytest.mark.slow  # the client retries with backoff before it gives up (about 25 s)
async def test_klaviyo_unavailable_in_the_list_picker() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"503": 1.0})
    with SandboxServer(settings) as server:
        add_sandbox_connection(server.base_url)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_screen(pilot, HomeScreen)
            await wait_until(pilot, lambda: bool(app.config.connections))
            await pilot.press("n")
            await wait_screen(pilot, ExportBuilderScreen)
            await pilot.click("#pick-list")
            await wait_screen(pilot, ListPickerScreen)
            status = app.screen.query_one("#status", Static)
            await wait_until(pilot, lambda: "What to do" in text(status), tries=6000)
            assert "unavailable" in text(status).lower()
            assert status.has_class("-error")


async def test_missing_column_stops_the_run_with_a_message(sandbox, tmp_path: Path) -> None:
    add_sandbox_connection(sandbox.base_url)
    [list_id] = create_lists(sandbox.base_url, ["VIP"])
    save_export(sample_csv(tmp_path / "customers.csv"), list_id, email="e_mail")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        run = await run_and_wait(pilot)
        assert run.has_class("-failed")
        summary = text(run.query_one("#summary", Static))
        assert "e_mail" in summary
        assert "Traceback" not in summary


async def test_leaving_the_builder_with_changes_asks_first(tmp_path: Path) -> None:
    add_sandbox_connection("http://127.0.0.1:9")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.press("n")
        await wait_screen(pilot, ExportBuilderScreen)
        await pilot.press("escape")  # nothing typed: leaves at once
        await wait_screen(pilot, HomeScreen)
        await pilot.press("n")
        await wait_screen(pilot, ExportBuilderScreen)
        builder = app.screen
        builder.query_one("#name", Input).value = "draft"
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(app.screen.query("#yes")))
        await pilot.press("n")  # keep editing
        await wait_until(pilot, lambda: app.screen is builder)
        assert builder.query_one("#name", Input).value == "draft"
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(app.screen.query("#yes")))
        await pilot.press("y")
        await wait_screen(pilot, HomeScreen)
        assert "draft" not in app.config.exports


@pytest.mark.slow  # the engine retries with backoff before it gives up
async def test_klaviyo_unavailable_during_a_run(tmp_path: Path) -> None:
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.0)) as healthy:
        add_sandbox_connection(healthy.base_url)
        [list_id] = create_lists(healthy.base_url, ["VIP"])
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"503": 1.0})
    with SandboxServer(settings) as down:
        store = ConfigStore()
        conn = store.config.connections["sandbox"]
        store.put_connection(dataclasses.replace(conn, base_url=down.base_url))
        store.save()
        save_export(sample_csv(tmp_path / "customers.csv"), list_id)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            run = await run_and_wait(pilot)
            assert run.has_class("-failed")
            summary = text(run.query_one("#summary", Static))
            assert "What to do" in summary
            assert "Traceback" not in summary
    records = HistoryStore().runs("vip")
    assert all(r.status != "running" for r in records)
