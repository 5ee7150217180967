"""Presses queued on a button before its screen shows open that screen once: spaces typed while
the focus sat on Browse… (a filter typed into the wrong place) stacked several file pickers."""

from __future__ import annotations

from textual.widgets import Button

from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.pickers import FilePickerScreen
from tests.support.tui import SIZE, add_sandbox_connection, type_into, wait_screen, wait_until


async def test_spaces_on_browse_open_one_picker_and_cancel_asks_once() -> None:
    add_sandbox_connection("http://127.0.0.1:9")  # never contacted
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        builder = ExportBuilderScreen()
        app.push_screen(builder)
        await wait_screen(pilot, ExportBuilderScreen)
        await type_into(pilot, "#name", "weekly")  # a change: leaving asks
        builder.show_tab("tab-source")
        await pilot.pause()
        browse = builder.query_one("#browse", Button)
        for _ in range(3):  # queued before the first is handled, as fast typing queues them
            browse.press()
        await wait_screen(pilot, FilePickerScreen)
        await pilot.pause(0.2)
        pickers = [s for s in app.screen_stack if isinstance(s, FilePickerScreen)]
        assert len(pickers) == 1
        await pilot.press("escape")
        await wait_screen(pilot, ExportBuilderScreen)
        cancel = builder.query_one("#cancel", Button)
        for _ in range(3):
            cancel.press()
        await wait_screen(pilot, ConfirmModal)
        await pilot.pause(0.2)
        assert len([s for s in app.screen_stack if isinstance(s, ConfirmModal)]) == 1
