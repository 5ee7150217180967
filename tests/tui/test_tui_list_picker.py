"""The list picker's "create": a name two lists of the account share picks neither; the error
names both ids, as text, and the picker stays open showing them so one can be picked by id."""

from __future__ import annotations

from textual.notifications import Notification
from textual.widgets import Input, OptionList

from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.pickers import ListPickerScreen
from tests.support.sandbox import client
from tests.support.tui import (
    SIZE,
    add_sandbox_connection,
    create_lists,
    screen_of,
    wait_screen,
    wait_until,
)


async def test_create_with_a_name_two_lists_share_picks_neither(sandbox: SandboxServer) -> None:
    add_sandbox_connection(sandbox.base_url)
    name = "[b]x[/]y\x1b[31mTwin[/b]"  # markup, a bad closing tag and an ESC sequence
    twins = create_lists(sandbox.base_url, [name, name, "Other"])[:2]
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        picked: list[object] = []
        await app.push_screen(ListPickerScreen(app.config.connections["sandbox"]), picked.append)
        await wait_screen(pilot, ListPickerScreen)
        picker = screen_of(pilot, ListPickerScreen)
        options = picker.query_one("#lists", OptionList)
        await wait_until(pilot, lambda: options.option_count == 3)
        picker.query_one("#new-name", Input).value = name
        await pilot.click("#create")

        def errors() -> list[Notification]:
            return [n for n in app._notifications if n.severity == "error"]

        await wait_until(pilot, lambda: bool(errors()))
        [note] = errors()
        assert note.title == "More than one list has that name"
        assert "2 lists in this account are named '[b]x[/]y\\x1b[31mTwin[/b]'" in note.message
        assert "\x1b" not in note.message  # the ESC is made visible, never sent to the TTY
        assert note.markup is False  # the name is shown as text, brackets and all
        assert all(list_id in note.message for list_id in twins)
        assert "--list ID" in note.message  # the hint: give the list by its id
        await wait_until(pilot, lambda: options.option_count == 2)  # the two of that name
        assert {options.get_option_at_index(i).id for i in range(2)} == set(twins)
        assert app.screen is picker and picked == []  # still open, nothing chosen
    with client(sandbox.base_url) as c:
        assert len(c.get("/api/lists").json()["data"]) == 3  # nothing created
