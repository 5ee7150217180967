"""The builder's Sync tab: incremental, mirror limits, subscribe with consent, verification.

Real parts: files on disk, the config store (what is saved is read back with `load_config`), the
consent text from `store.consent`; no Klaviyo is contacted (the connection points nowhere).
"""

from __future__ import annotations

import dataclasses
import getpass
from pathlib import Path
from typing import Any

from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select, Static, TabbedContent

from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import subscribe_consent_text
from klaviyo_tui.store.sync_config import Subscribe, SyncSettings
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.builder.sync_tab import (
    INCREMENTAL_LABEL,
    MIRROR_LABEL,
    UPSERT_LABEL,
    SyncTab,
)
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import (
    SIZE,
    Terminal,
    add_sandbox_connection,
    app_of,
    sample_csv,
    wait_screen,
    wait_until,
)

NOWHERE = "http://127.0.0.1:9"  # never contacted here
ASSERTED = Subscribe("email", "optin_at", True, "2026-11-01T10:00:00+00:00", "ana")


def text(widget: Static) -> str:
    content = widget.render()
    assert isinstance(content, Content), f"{widget!r} shows a {type(content).__name__}"
    return " ".join(content.plain.split())


def optin_csv(path: Path, column: str = "optin_at") -> Path:
    lines = [f"email,phone,{column}"]
    lines += [f"p{i}@example.com,+1415555{i:04d},2024-0{1 + i % 9}-01" for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    return path


PLAIN = SyncSettings()


def save_export(
    csv: Path, sync: SyncSettings = PLAIN, *, phone: bool = True, verify: str = "off"
) -> None:
    store = ConfigStore()
    store.put_segment(Segment("vip", str(csv)))
    mapping = Mapping(email="email", phone_number="phone" if phone else None)
    export = Export("vip", "sandbox", "Y6nRLr", ("vip",), mapping, list_name="VIP")
    store.put_export(dataclasses.replace(export, sync=sync, verify=verify))
    store.save()


async def sync_tab(pilot: Pilot[Any]) -> tuple[ExportBuilderScreen, SyncTab]:
    """Open the saved export `vip` in the builder, on its Sync tab."""
    app = app_of(pilot)
    await wait_screen(pilot, HomeScreen)
    await wait_until(pilot, lambda: "vip" in app.config.exports)
    builder = ExportBuilderScreen(app.config.exports["vip"])
    app.push_screen(builder)
    await wait_until(pilot, lambda: app.screen is builder and builder.frame is not None, 1500)
    builder.show_tab("tab-sync")
    await wait_until(pilot, lambda: builder.query_one("#tabs", TabbedContent).active == "tab-sync")
    await pilot.pause()
    return builder, builder.query_one(SyncTab)


async def saved(pilot: Pilot[Any]) -> Export:
    await pilot.press("ctrl+s")
    await wait_screen(pilot, HomeScreen)
    return load_config().exports["vip"]


async def test_new_exports_start_incremental_and_old_ones_run_as_before(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(sample_csv(tmp_path / "customers.csv"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder, tab = await sync_tab(pilot)
        assert not tab.query_one("#incremental", Checkbox).value  # saved without: as before
        assert not tab.query_one("#limits").display  # upsert: no removal limits to set
        assert not tab.query_one("#consent").display
        await pilot.press("escape")  # nothing changed: leaves at once
        await wait_screen(pilot, HomeScreen)
        await pilot.press("n")
        await wait_screen(pilot, ExportBuilderScreen)
        assert app.screen.query_one("#incremental", Checkbox).value


async def test_mirror_limits_and_verification_are_saved(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(sample_csv(tmp_path / "customers.csv"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        _, tab = await sync_tab(pilot)
        await pilot.click("#incremental")
        await pilot.click("#mode-mirror")
        await pilot.pause()
        assert tab.query_one("#limits").display
        status = tab.query_one("#limits-status", Static)
        assert "more than 10% of the list" in text(status)
        tab.query_one("#max-ratio", Input).value = "5"
        tab.query_one("#max-removals", Input).value = "1,000"
        await pilot.pause()
        assert "more than 5% of the list or more than 1,000 profiles" in text(status)
        assert "(about 2 of this export's 40 rows)" in text(status)
        tab.query_one("#max-ratio", Input).value = "150"
        await pilot.pause()
        assert "from 0 to 100" in text(status) and status.has_class("error-text")
        await pilot.press("ctrl+s")  # refused: says what to fix, saves nothing
        await pilot.pause()
        assert isinstance(app.screen, ExportBuilderScreen)
        assert load_config().exports["vip"].sync == SyncSettings()
        tab.query_one("#max-ratio", Input).value = "5"
        tab.query_one("#verify", Select).value = "full"
        await pilot.pause()
        cost = tab.query_one("#verify-cost", Static)
        assert "reads every member of the list back: for 40 members" in text(cost)
        tab.query_one("#verify", Select).value = "sample"
        tab.query_one("#sample-size", Input).value = "250"
        await pilot.pause()
        assert "looks up 250 random confirmed rows by email (3 calls" in text(cost)
        export = await saved(pilot)
    assert export.sync == SyncSettings("mirror", True, 0.05, 1000, None)
    assert export.verify == "sample:250"


async def test_subscribing_shows_the_consent_and_needs_the_tick(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(optin_csv(tmp_path / "customers.csv"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder, tab = await sync_tab(pilot)
        tab.query_one("#subscribe", Select).value = "email"
        await pilot.pause()
        consent = tab.query_one("#consent-text", Static)
        assert text(consent) == " ".join(subscribe_consent_text("email", False, None).split())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ExportBuilderScreen)  # not saved without the assertion
        error = text(builder.query_one("#save-error", Static))
        assert "needs your assertion" in error and "I assert this consent" in error
        assert load_config().exports["vip"].sync.subscribe is None
        tab.query_one("#consent-column", Select).value = "optin_at"
        tab.query_one("#historical", Checkbox).value = True
        await pilot.pause()
        historical = subscribe_consent_text("email", True, "optin_at")
        assert text(consent) == " ".join(historical.split())
        await pilot.click("#assert")
        export = await saved(pilot)
    sub = export.sync.subscribe
    assert sub is not None and (sub.channel, sub.consented_at_column, sub.historical) == (
        "email",
        "optin_at",
        True,
    )
    assert sub.asserted_at and sub.asserted_by == getpass.getuser()


async def test_an_asserted_subscription_is_shown_and_a_change_asks_again(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(optin_csv(tmp_path / "customers.csv"), SyncSettings(subscribe=ASSERTED))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        _, tab = await sync_tab(pilot)
        assert tab.query_one("#consent-column", Select).value == "optin_at"
        assert tab.query_one("#historical", Checkbox).value
        tick = tab.query_one("#assert", Checkbox)
        status = tab.query_one("#assert-status", Static)
        assert tick.value and "Asserted by ana at 2026-11-01T10:00:00+00:00" in text(status)
        tab.query_one("#subscribe", Select).value = "both"
        await pilot.pause()
        assert not tick.value  # another assertion: it is asked again
        tab.query_one("#subscribe", Select).value = "email"
        await pilot.pause()
        assert tick.value  # back to what was asserted
        await pilot.press("escape")  # nothing changed in the end: leaves at once
        await wait_screen(pilot, HomeScreen)
    assert load_config().exports["vip"].sync.subscribe == ASSERTED


async def test_sms_needs_a_phone_column(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(optin_csv(tmp_path / "customers.csv"), phone=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder, tab = await sync_tab(pilot)
        tab.query_one("#subscribe", Select).value = "sms"
        await pilot.pause()
        problem = tab.query_one("#subscribe-problem", Static)
        assert problem.display and "map a Phone column" in text(problem)
        await pilot.click("#assert")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ExportBuilderScreen)
        assert "needs a phone_number column" in text(builder.query_one("#save-error", Static))


async def test_a_column_name_in_the_consent_text_is_text(tmp_path: Path) -> None:
    column = "[b]opt[/b] [@click=app.quit]in"
    add_sandbox_connection(NOWHERE)
    save_export(optin_csv(tmp_path / "customers.csv", column=column.replace(",", "")))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        _, tab = await sync_tab(pilot)
        tab.query_one("#subscribe", Select).value = "email"
        await pilot.pause()
        tab.query_one("#consent-column", Select).value = column
        await pilot.pause()
        consent = tab.query_one("#consent-text", Static)
        assert f"in column {column!r} of each row" in text(consent)
        assert app.is_running


async def test_the_sync_tab_fits_60x20_and_help_stays_in_the_footer(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(sample_csv(tmp_path / "customers.csv"))
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        terminal = Terminal(app)
        _, tab = await sync_tab(pilot)
        await pilot.click("#mode-mirror")
        await pilot.pause()
        app.screen.refresh()
        await pilot.pause()
        shown = terminal.text()
        for label in (INCREMENTAL_LABEL, UPSERT_LABEL, MIRROR_LABEL, "profiles (empty: any)"):
            assert label in shown, (label, shown)
        assert "? Help" in terminal.line(19)
    async with make_app().run_test(size=(80, 24)) as pilot:
        terminal = Terminal(pilot.app)
        await sync_tab(pilot)
        pilot.app.screen.refresh()
        await pilot.pause()
        assert "? Help" in terminal.line(23)
        assert "4 Sync" in terminal.line(1) and "5 Check & save" in terminal.line(1)
