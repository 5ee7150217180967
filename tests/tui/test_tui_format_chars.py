"""The list picker shows a list name holding a bidi override, a zero-width space and a line
separator as escapes, never the raw characters."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import OptionList

from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.pickers import ListPickerScreen
from tests.support.tui import (
    SIZE,
    add_sandbox_connection,
    create_lists,
    screen_of,
    wait_screen,
    wait_until,
)


async def test_list_picker_escapes_invisible_characters(sandbox: SandboxServer) -> None:
    add_sandbox_connection(sandbox.base_url)
    [list_id] = create_lists(sandbox.base_url, ["abc\u202eevil\u200b\u2028x"])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        await app.push_screen(ListPickerScreen(app.config.connections["sandbox"]))
        await wait_screen(pilot, ListPickerScreen)
        options = screen_of(pilot, ListPickerScreen).query_one("#lists", OptionList)
        await wait_until(pilot, lambda: options.option_count == 1)
        prompt = options.get_option_at_index(0).prompt
        assert isinstance(prompt, Content)
        assert prompt.plain == f"abc\\u202eevil\\u200b\\u2028x  {list_id}"
