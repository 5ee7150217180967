"""What the terminal shows at 80×24 and 60×20: nothing essential cut, toasts clear and stay off
the buttons.

These read a `Terminal` (tui_support) fed with every update the app writes, so they see what a
person sees, including what the app forgot to repaint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.tui.app import DemoInfo, make_app
from klaviyo_tui.tui.screens.connection import ConnectionDraft, ConnectionFormScreen, VerifyScreen
from klaviyo_tui.tui.screens.consent import ConsentScreen
from klaviyo_tui.tui.screens.history import RunDetailScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import Terminal, wait_screen, wait_until

DEMO = DemoInfo("http://127.0.0.1:9", DEMO_KEY, Path("/tmp/demo/customers.csv"))
LONG_REASON = (
    "Phone number is valid but is not in a supported region for this account: the profile "
    "was not imported, and neither were its email address and its properties (row kept in "
    "the rejects file)"
)


async def shown_form(pilot: Pilot[Any]) -> Terminal:
    terminal = Terminal(pilot.app)
    await wait_screen(pilot, ConnectionFormScreen)
    await pilot.pause()
    pilot.app.screen.refresh()
    await pilot.pause()
    return terminal


async def test_an_expired_toast_leaves_the_terminal_without_a_key() -> None:
    app = make_app(demo=DEMO)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        terminal = await shown_form(pilot)
        await pilot.press("f2")  # fills the form, opens "Advanced", says so in a toast
        await wait_until(pilot, lambda: "filled in" in terminal.text())
        await wait_until(pilot, lambda: "filled in" not in terminal.text(), tries=400)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_toasts_stay_off_the_button_row(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size, notifications=True) as pilot:
        terminal = await shown_form(pilot)
        await app.push_screen(ConsentScreen("Acme"))
        await pilot.pause()
        for i in range(3):
            app.notify("A long message that wraps over several lines " * 3, title=f"T{i}")
        await wait_until(pilot, lambda: "T2" in terminal.text())
        buttons = terminal.line(size[1] - 2)
        assert "‹ Back" in buttons and "Accept and connect ›" in buttons, terminal.text()


def test_a_toast_expiring_after_the_screens_closed_is_no_error() -> None:
    # A toast's repaint timer can fire while the app closes, when no screen is left (CI saw
    # ScreenStackError at the end of a run test).
    app = make_app()
    assert not app.screen_stack
    app._repaint()


def write_long_config() -> None:
    store = ConfigStore()
    store.put_connection(
        accept(Connection("acme", "Acme production account", base_url="http://127.0.0.1:9"))
    )
    store.put_segment(Segment("s", "/srv/exports/2026/customers-with-a-very-long-name.parquet"))
    for name in ("vip-customers-europe-weekly", "winback"):
        store.put_export(
            Export(
                name,
                "acme",
                "Y6nRLr",
                ("s",),
                Mapping(email="email"),
                list_name="VIP customers of the European stores (weekly)",
            )
        )
    store.save()
    history = HistoryStore()
    run_id = history.start_run(export="winback", connection="acme", list_id="Y6nRLr")
    history.add_failures(run_id, [Reject(3, "s", "phone", "+44", LONG_REASON, RowState.REJECTED)])
    counts = {"imported": 1_234_567, "invalid": 0, "rejected_by_klaviyo": 1}
    counts |= {"duplicate": 0, "not_sent": 0}
    summary = RunSummary(run_id, "winback", counts, 9.0, ExitCode.PARTIAL, jobs=1)
    history.finish_run(run_id, summary)
    history.close()


async def test_home_fits_80x24() -> None:
    write_long_config()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        terminal = Terminal(app)
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_until(pilot, lambda: "winback" in home.last_runs)
        await pilot.pause()
        home.refresh()
        await pilot.pause()
        text = terminal.text()
        for header in ("Export", "List", "Source", "Last run", "Status", "Imported"):
            assert f" {header} " in text, (header, text)
        assert "1,234,567" in text
        for table in home.query(DataTable):
            assert table.virtual_size.width <= table.size.width, table.id
        assert "? Help" in terminal.line(23)


async def test_run_detail_shows_whole_reasons_at_80x24() -> None:
    write_long_config()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: bool(app.config.exports))
        await app.push_screen(RunDetailScreen(1))
        detail = app.screen
        table = detail.query_one("#reasons", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        await pilot.pause()
        assert table.virtual_size.width <= table.size.width  # cut to fit, not scrolled away
        full = detail.query_one("#reason-full", Static)
        assert LONG_REASON in " ".join(str(full.render()).split())
        assert full.size.height > 1  # wrapped
        path = detail.query_one("#csv-path", Input)
        path.focus()
        await pilot.pause()
        assert path.region.right <= 80 and detail.query_one("#write").region.right <= 80


async def test_labels_keep_their_arrows_at_60x20(sandbox) -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        terminal = await shown_form(pilot)
        assert "Next: privacy ›" in terminal.line(18)
        await app.push_screen(ConsentScreen("Acme"))
        await pilot.pause()
        assert "‹ Back" in terminal.line(18) and "Accept and connect ›" in terminal.line(18)
        box = app.screen.query_one("#accept")
        assert box.region.right <= 60
        assert box.size.height == 2  # the label wraps instead of being cut
        await wait_until(pilot, lambda: "machine for Klaviyo." in terminal.text())
        draft = ConnectionDraft("x", "Acme", sandbox.base_url, DEMO_KEY, False, ("now", "me"))
        await app.push_screen(VerifyScreen(draft))
        await wait_until(pilot, lambda: not app.screen.query_one("#save").disabled)
        await pilot.pause()
        assert "‹ Back" in terminal.line(18) and "Save connection" in terminal.line(18)
