"""Focus shows on every widget without colour, Space presses buttons, Enter advances, and keys
typed while a screen is being shown reach it.

"Without colour" is checked the strict way: the screen is rendered with Textual's NoColor filter
(what NO_COLOR gives on an ANSI-theme terminal), so only attributes (bold, reverse, underline)
and characters (border glyphs, markers) can tell a focused widget from an unfocused one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment
from textual import events
from textual.color import Color
from textual.filter import NoColor
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input

from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.tui.app import KlaviyoApp, make_app
from klaviyo_tui.tui.errors import ErrorInfo
from klaviyo_tui.tui.screens.connection import ConnectionDraft, ConnectionFormScreen, VerifyScreen
from klaviyo_tui.tui.screens.consent import ConsentScreen
from klaviyo_tui.tui.screens.dialogs import ConfirmModal, ErrorModal
from klaviyo_tui.tui.screens.help import HelpScreen
from klaviyo_tui.tui.screens.history import HistoryScreen, RunDetailScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.pickers import FilePickerScreen, ListPickerScreen
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.tui import (
    SIZE,
    add_sandbox_connection,
    app_of,
    create_lists,
    wait_screen,
    wait_until,
)

NO_COLOR = NoColor()
Look = list[tuple[tuple[str, str], ...]]


def look(app: KlaviyoApp, widget: Widget) -> Look:
    """The widget's cells on screen, colours removed: characters and attributes only."""
    strips = app.screen._compositor.render_strips()
    region = widget.region
    lines = []
    for y in range(region.y, region.bottom):
        strip = strips[y].crop(region.x, region.right)
        plain = NO_COLOR.apply(list(strip), Color(0, 0, 0))
        lines.append(tuple((s.text, str(s.style)) for s in plain))
    return lines


def attributes(app: KlaviyoApp, widget: Widget) -> set[str]:
    """The attributes of the widget's non-blank cells, colours removed."""
    return {style for line in look(app, widget) for text, style in line if text.strip()}


async def invisible_focus(pilot: Pilot[Any]) -> list[str]:
    """Focusable widgets of the current screen that look the same focused and unfocused."""
    app = app_of(pilot)
    screen = app.screen
    hidden = []
    for widget in list(screen.focus_chain):
        widget.scroll_visible(animate=False)
        screen.set_focus(widget)
        await pilot.pause()
        focused = look(app, widget)
        screen.set_focus(None)
        await pilot.pause()
        if look(app, widget) == focused:
            hidden.append(f"{type(widget).__name__}#{widget.id}")
    return hidden


async def settle(pilot: Pilot[Any]) -> None:
    """Every worker (lists, history, checks) has ended; DirectoryTree's loader never does."""

    def done() -> bool:
        return all(w.is_finished for w in pilot.app.workers if w.group != "_loader")

    await wait_until(pilot, done, tries=1000)
    await pilot.pause()


async def open_form(pilot: Pilot[Any]) -> None:
    await wait_screen(pilot, ConnectionFormScreen)  # first launch: no connections yet
    await pilot.pause()


async def test_focus_shows_without_colour_on_every_screen(sandbox) -> None:
    from tests.tui.test_snapshots import mid_upload, write_config, write_history

    write_config()
    write_history()
    add_sandbox_connection(sandbox.base_url)
    create_lists(sandbox.base_url, ["Newsletter", "VIP customers"])
    app = make_app()
    draft = ConnectionDraft("x", "X", sandbox.base_url, DEMO_KEY, False, ("now", "me"))
    screens: dict[str, Callable[[], Screen[Any]]] = {
        "history": HistoryScreen,
        "run detail": lambda: RunDetailScreen(1),
        "run": lambda: RunScreen(mid_upload()),
        "list picker": lambda: ListPickerScreen(app.config.connections["sandbox"]),
        "file picker": lambda: FilePickerScreen(Path.cwd()),
        "form": lambda: ConnectionFormScreen(None),
        "consent": lambda: ConsentScreen("Acme"),
        "verify": lambda: VerifyScreen(draft),
        "confirm": lambda: ConfirmModal("Remove?", "Really?"),
        "error": lambda: ErrorModal(ErrorInfo("Failed", "It broke.", "Try again.")),
        "help": HelpScreen,
    }
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.exports))
        await settle(pilot)
        hidden = {"home": await invisible_focus(pilot)}
        for name, make in screens.items():
            await app.push_screen(make())
            await settle(pilot)
            assert list(app.screen.focus_chain), name
            hidden[name] = await invisible_focus(pilot)
        assert not any(hidden.values()), hidden


@pytest.mark.parametrize("theme", sorted(KlaviyoApp().available_themes))
async def test_focus_shows_in_every_theme(theme: str) -> None:
    """Each kind of control: table, field, checkbox, collapsible, tree, compact and full buttons."""
    from tests.tui.test_snapshots import write_config

    write_config()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.theme = theme
        await wait_until(pilot, lambda: bool(app.config.exports))
        await settle(pilot)
        hidden = await invisible_focus(pilot)
        await app.push_screen(FilePickerScreen(Path.cwd()))
        await settle(pilot)
        hidden += await invisible_focus(pilot)
        await app.push_screen(ConnectionFormScreen(None))
        await settle(pilot)
        hidden += await invisible_focus(pilot)
        form = app.screen
        # a focused button never looks like an unfocused primary one
        form.set_focus(form.query_one("#cancel", Button))
        await pilot.pause()
        focused = attributes(app, form.query_one("#cancel"))
        assert focused != attributes(app, form.query_one("#next")), theme
        await app.push_screen(ConfirmModal("Remove?", "Really?"))
        await pilot.pause()
        hidden += await invisible_focus(pilot)
        assert not hidden, (theme, hidden)


async def test_space_presses_buttons() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot)
        form = app.screen
        form.set_focus(form.query_one("#cancel", Button))
        await pilot.press("space")
        await wait_screen(pilot, HomeScreen)  # Cancel was pressed


async def test_two_quick_enters_on_consent_tick_then_advance() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot)
        form = app.screen
        form.query_one("#display-name", Input).value = "Acme"
        form.query_one("#key", Input).value = DEMO_KEY
        await pilot.press("enter")
        await wait_screen(pilot, ConsentScreen)
        await pilot.pause()
        box = app.screen.query_one("#accept", Checkbox)
        assert app.focused is box and not box.value
        app.post_message(events.Key("enter", None))  # both queued before either is handled
        app.post_message(events.Key("enter", None))
        await wait_screen(pilot, VerifyScreen)


async def test_space_still_toggles_the_consent_box() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot)
        await app.push_screen(ConsentScreen("Acme"))
        await pilot.pause()
        box = app.screen.query_one("#accept", Checkbox)
        await pilot.press("space")
        assert box.value
        await pilot.press("space")
        assert not box.value
        assert app.screen.query_one("#accept-button", Button).disabled


async def test_enter_in_the_list_search_picks_the_only_match(sandbox) -> None:
    add_sandbox_connection(sandbox.base_url)
    create_lists(sandbox.base_url, ["Newsletter", "VIP customers"])
    app = make_app()
    picked: list[Any] = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        picker = ListPickerScreen(app.config.connections["sandbox"])
        await app.push_screen(picker, picked.append)
        await wait_until(pilot, lambda: "2 lists" in str(picker.query_one("#status").render()))
        await pilot.press("V", "I", "P", "enter")
        await wait_screen(pilot, HomeScreen)
    assert [p.name for p in picked] == ["VIP customers"]


def footer_keys(app: KlaviyoApp) -> set[str]:
    """The keys the footer offers now (what `check_action` lets it show)."""
    return {
        active.binding.key_display or active.binding.key
        for active in app.active_bindings.values()
        if active.binding.show and active.enabled
    }


async def test_help_is_offered_once_typing_or_not() -> None:
    """While a field has focus `?` is typed into it, so the footer offers F1 and not `?`;
    elsewhere `?`. F1 opens help in both, and `?` typed in a field stays in the field."""
    add_sandbox_connection("http://127.0.0.1:9")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        await wait_screen(pilot, HomeScreen)
        await pilot.pause()
        assert "?" in footer_keys(app) and "F1" not in footer_keys(app)
        await pilot.press("c")
        await open_form(pilot)
        field = app.screen.query_one("#display-name", Input)
        app.screen.set_focus(field)
        await pilot.pause()
        assert "F1" in footer_keys(app) and "?" not in footer_keys(app)
        await pilot.press("question_mark")
        assert field.value == "?"
        await pilot.press("f1")
        await wait_screen(pilot, HelpScreen)


@pytest.mark.parametrize("gap", [0.0, 0.1])
async def test_keys_typed_while_a_screen_opens_reach_it(gap: float) -> None:
    """`c` then the name at once: the wizard's form gets every letter."""
    add_sandbox_connection("http://127.0.0.1:9")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.pause()
        app.post_message(events.Key("c", "c"))
        await asyncio.sleep(gap)  # the person's typing speed, not a wait for work
        for char in "Acme":
            app.post_message(events.Key(char, char))
        await wait_screen(pilot, ConnectionFormScreen)
        field = app.screen.query_one("#display-name", Input)
        await wait_until(pilot, lambda: field.value == "Acme")


async def test_export_name_typed_right_after_n_is_kept() -> None:
    add_sandbox_connection("http://127.0.0.1:9")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.pause()
        for char in "nvip":  # all queued before Home has acted on `n`
            app.post_message(events.Key(char, char))
        await wait_until(pilot, lambda: bool(app.screen.query("#name")))
        name = app.screen.query_one("#name", Input)
        await wait_until(pilot, lambda: name.value == "vip")


async def test_a_quick_answer_reaches_the_confirmation() -> None:
    from tests.tui.test_snapshots import write_config

    write_config()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.config.exports))
        await pilot.pause()
        app.post_message(events.Key("x", "x"))  # remove the export...
        app.post_message(events.Key("y", "y"))  # ...yes, at once
        await wait_until(pilot, lambda: not app.config.exports)


def test_segments_helper_sees_attributes() -> None:
    """The NoColor view keeps attributes: the check above can fail."""
    from rich.style import Style

    plain = NO_COLOR.apply([Segment("x", Style(color="red", reverse=True))], Color(0, 0, 0))
    assert plain[0].style is not None and plain[0].style.reverse


async def test_keys_are_never_held_for_long() -> None:
    """A flow that was to show a screen and did not: the held keys still arrive."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot)
        app.keys.expect()  # nothing will come
        for char in "Ab":
            app.post_message(events.Key(char, char))
        field = app.screen.query_one("#display-name", Input)
        await pilot.pause()
        assert field.value == ""  # held for now
        await wait_until(pilot, lambda: field.value == "Ab")
