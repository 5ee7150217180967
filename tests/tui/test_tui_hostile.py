"""Data is displayed, never interpreted: hostile names, cells, reasons and messages on every screen.

Names that are Textual/Rich markup (`[VIP]`, `x[/]y`, links, `@click` actions) or terminal escapes
(OSC 2 window title, OSC 52 clipboard) reach every screen through config, history, Klaviyo and
errors. Each screen must not crash, must show the literal text, and must render no link, no
action and no control character.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from rich.style import Style
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.secrets import store_api_key
from klaviyo_tui.tui.app import KlaviyoApp, RunHandle, make_app
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.connection import ConnectionDraft, ConnectionFormScreen, VerifyScreen
from klaviyo_tui.tui.screens.consent import ConsentScreen
from klaviyo_tui.tui.screens.dialogs import ConfirmModal, ErrorModal
from klaviyo_tui.tui.screens.history import HistoryScreen, RunDetailScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.pickers import ListPickerScreen
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.tui import app_of, create_lists, wait_screen, wait_until

HOSTILE = [
    "[VIP]",
    "x[/]y",
    "[link=https://e.x]a[/link]",
    "[@click=app.quit]q[/]",
    "\x1b]2;pwned\x07",
    "\x1b]52;c;cHduZWQ=\x07",
]
BIG = (220, 60)  # wide enough that no column cuts a name: every literal must be visible


def rendered(app: KlaviyoApp) -> tuple[str, list[Style]]:
    """The top screen as the terminal would get it: its text and the styles of its segments."""
    strips = app.screen._compositor.render_strips()
    text = "\n".join("".join(segment.text for segment in strip) for strip in strips)
    styles = [segment.style for strip in strips for segment in strip if segment.style]
    return text, styles


def assert_displayed(app: KlaviyoApp, literals: Iterable[str]) -> None:
    """Each literal is visible as text; nothing became a link, an action or an escape."""
    text, styles = rendered(app)
    for literal in literals:
        assert safe_text(literal) in text, (literal, text)
    assert "\x1b" not in text and "\x07" not in text
    assert not any(style.link for style in styles), "data became a link"
    actions = [style.meta.get("@click") for style in styles if style.meta]
    assert not any(a and "quit" in str(a) for a in actions), actions
    assert "pwned" not in app.title


def write_hostile_config(base_url: str = "http://127.0.0.1:9") -> None:
    store = ConfigStore()
    for i, name in enumerate(HOSTILE):
        conn = accept(Connection(f"c{i}", name, base_url=base_url))
        store.put_connection(conn)
        store.put_segment(Segment(f"s{i}", f"/data/{name}.csv"))
        mapping = Mapping(email="email")
        store.put_export(Export(name, f"c{i}", "Y6nRLr", (f"s{i}",), mapping, list_name=name))
    store.save()
    for i in range(len(HOSTILE)):
        store_api_key(f"c{i}", DEMO_KEY)


def write_hostile_history() -> int:
    store = HistoryStore()
    run_id = 0
    for name in HOSTILE:
        run_id = store.start_run(export=name, connection="c0", list_id="Y6nRLr")
        rejects = [
            Reject(i + 1, "s0", "email", name, f"{reason} {name}", RowState.REJECTED)
            for i, reason in enumerate(HOSTILE)
        ]
        store.add_failures(run_id, rejects)
        counts = {"imported": 3, "invalid": 0, "rejected_by_klaviyo": len(HOSTILE)}
        counts |= {"duplicate": 0, "not_sent": 0}
        summary = RunSummary(run_id, name, counts, 2.0, ExitCode.PARTIAL, error=name, jobs=1)
        store.finish_run(run_id, summary)
    store.close()
    return run_id


async def settle(pilot: Pilot[Any]) -> None:
    app = app_of(pilot)
    await wait_until(pilot, lambda: len(app.config.exports) == len(HOSTILE))
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_home_palette_and_confirmations() -> None:
    write_hostile_config()
    write_hostile_history()
    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        await settle(pilot)
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_until(pilot, lambda: len(home.last_runs) == len(HOSTILE))
        await pilot.pause()
        assert_displayed(app, HOSTILE)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: "Edit x[/]y" in rendered(app)[0])
        assert_displayed(app, [f"Edit {name}" for name in HOSTILE])
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("x")  # remove the highlighted export: the question names it
        await wait_screen(pilot, ConfirmModal)
        assert_displayed(app, [f"Remove the export “{sorted(HOSTILE)[0]}”"])
        await pilot.press("n")
        await wait_screen(pilot, HomeScreen)
        assert app.is_running


async def test_history_and_run_detail() -> None:
    write_hostile_config()
    last = write_hostile_history()
    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await wait_screen(pilot, HistoryScreen)
        table = app.screen.query_one("#runs", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)  # h: the highlighted export's runs
        app.screen.query_one("#filter", Select).clear()  # all exports
        await wait_until(pilot, lambda: table.row_count == len(HOSTILE))
        await pilot.pause()
        assert_displayed(app, HOSTILE)
        await app.push_screen(RunDetailScreen(last))
        detail = app.screen
        reasons = detail.query_one("#reasons", DataTable)
        await wait_until(pilot, lambda: reasons.row_count == len(HOSTILE))
        await pilot.pause()
        assert_displayed(app, [HOSTILE[-1], f"{HOSTILE[0]} {HOSTILE[-1]}"])  # title, reason
        for _ in HOSTILE:  # each reason in full under the table
            text = str(detail.query_one("#reason-full", Static).render())
            assert "[" in text or "\\x1b" in text
            await pilot.press("down")
        assert_displayed(app, [])


async def test_run_view_with_hostile_log_and_error() -> None:
    write_hostile_config()
    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        await settle(pilot)
        progress = RunProgress(HOSTILE[1])
        progress.log.extend(f"line {name}" for name in HOSTILE)
        progress.error = f"Klaviyo said: {HOSTILE[2]}\nWhat to do: {HOSTILE[3]}"
        await app.push_screen(RunScreen(RunHandle(HOSTILE[1], progress)))
        await pilot.pause()
        assert_displayed(app, [f"Run · {HOSTILE[1]}", *(f"line {n}" for n in HOSTILE)])
        assert_displayed(app, [HOSTILE[2], HOSTILE[3]])


async def test_list_picker_with_hostile_list_names(sandbox) -> None:
    names = ["[VIP]", "x[/]y", "[link=https://e.x]a[/link]", "[@click=app.quit]q[/]"]
    names.append("\x1b]2;pwned\x07")
    conn = accept(Connection("sandbox", HOSTILE[0], base_url=sandbox.base_url))
    store = ConfigStore()
    store.put_connection(conn)
    store.save()
    store_api_key("sandbox", DEMO_KEY)
    create_lists(sandbox.base_url, names)
    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        await wait_until(pilot, lambda: bool(app.config.connections))
        await app.push_screen(ListPickerScreen(conn))
        picker = app.screen
        status = picker.query_one("#status", Static)
        await wait_until(pilot, lambda: "5 of 5" in str(status.render()))
        await pilot.pause()
        assert_displayed(app, [*names, f"Pick a list in “{HOSTILE[0]}”"])


@pytest.mark.parametrize("name", HOSTILE)
async def test_wizard_steps_with_hostile_display_name(sandbox, name: str) -> None:
    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        await wait_screen(pilot, ConnectionFormScreen)  # first launch
        app.screen.dismiss(None)
        await wait_screen(pilot, HomeScreen)
        await app.push_screen(ConsentScreen(name))
        await pilot.pause()
        assert_displayed(app, [f"{name} · step 2 of 3"])
        app.screen.dismiss(None)
        draft = ConnectionDraft("x", name, sandbox.base_url, DEMO_KEY, False, ("now", "me"))
        await app.push_screen(VerifyScreen(draft))
        await wait_until(pilot, lambda: not app.screen.query_one("#save").disabled)
        assert_displayed(app, [f"{name} · step 3 of 3"])
        app.screen.dismiss(None)
        existing = Connection("x", name, base_url=sandbox.base_url)
        await app.push_screen(ConnectionFormScreen(existing))
        await pilot.pause()
        assert_displayed(app, [])  # in an Input: escapes shown, not sent
        assert app.screen.query_one("#display-name", Input).value == safe_text(name)


async def test_error_panel_and_notifications() -> None:
    app = make_app()
    message = " ".join(HOSTILE)
    async with app.run_test(size=BIG, notifications=True) as pilot:
        await wait_screen(pilot, ConnectionFormScreen)
        app.screen.dismiss(None)
        await wait_screen(pilot, HomeScreen)
        await app.push_screen(ErrorModal(describe_error(AppError(message, hint=HOSTILE[3]))))
        await pilot.pause()
        assert_displayed(app, HOSTILE)
        await pilot.press("escape")
        await wait_screen(pilot, HomeScreen)
        for name in HOSTILE:
            app.notify(name, title=HOSTILE[0])
        await pilot.pause()
        await pilot.pause()
        assert_displayed(app, HOSTILE)


async def test_pasted_escapes_are_shown_not_sent() -> None:
    from textual import events

    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        await wait_screen(pilot, ConnectionFormScreen)
        await pilot.pause()
        field = app.screen.query_one("#display-name", Input)
        assert app.focused is field
        app.post_message(events.Paste("Acme \x1b]52;c;cHduZWQ=\x07 prod\r\n"))
        await wait_until(pilot, lambda: bool(field.value))
        assert field.value == "Acme \\x1b]52;c;cHduZWQ=\\x07 prod"
        assert_displayed(app, [field.value])
