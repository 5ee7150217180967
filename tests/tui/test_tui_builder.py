"""The export builder tells the truth: checks on the filtered rows, what will be sent, every field
visible, filter help with a caret, a removed connection, ctrl+q asking, and data shown as text.

Real parts throughout: files on disk, the config store, and the sandbox over loopback for lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment as RichSegment
from textual.content import Content
from textual.errors import NoWidget
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import (
    Button,
    Collapsible,
    DataTable,
    Input,
    RadioButton,
    Select,
    SelectionList,
    Static,
)

from klaviyo_tui.input.filters import FilterError, compile_filter
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.tui.app import KlaviyoApp, make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.builder.filter_field import caret_lines
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import (
    SIZE,
    add_sandbox_connection,
    app_of,
    create_lists,
    sample_csv,
    screen_of,
    type_into,
    wait_screen,
    wait_until,
)

NOWHERE = "http://127.0.0.1:9"  # a connection that is never contacted in these tests


def text(widget: Static) -> str:
    content = widget.render()
    assert isinstance(content, Content), f"{widget!r} shows a {type(content).__name__}"
    return content.plain


def people_csv(path: Path) -> Path:
    """30 people: 10 in the US (two with a bad phone), 20 in France (all with a bad phone)."""
    lines = ["email,phone,first_name,city,country,tier,notes"]
    for i in range(30):
        us = i < 10
        phone = "12345" if (i in (2, 4) or not us) else f"+1415555{i:04d}"
        lines.append(f"p{i}@example.com,{phone},P{i},Town,{'US' if us else 'FR'},gold,n{i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def save_export(csv: Path, *, connection: str = "sandbox", filter: str | None = None) -> None:
    store = ConfigStore()
    store.put_segment(Segment("vip", str(csv), filter=filter))
    mapping = Mapping(email="email", phone_number="phone")
    store.put_export(Export("vip", connection, "Y6nRLr", ("vip",), mapping, list_name="VIP"))
    store.save()


async def edit(
    pilot: Pilot[Any], results: list[Export | None] | None = None
) -> ExportBuilderScreen:
    """Open the saved export `vip` in the builder (collecting what it dismisses with)."""
    app = app_of(pilot)
    await wait_screen(pilot, HomeScreen)
    await wait_until(pilot, lambda: "vip" in app.config.exports)
    builder = ExportBuilderScreen(app.config.exports["vip"])
    app.push_screen(builder, results.append if results is not None else None)
    await wait_until(pilot, lambda: app.screen is builder and builder.frame is not None, 1500)
    return builder


async def new_builder(pilot: Pilot[Any], csv: Path) -> ExportBuilderScreen:
    app = app_of(pilot)
    await wait_screen(pilot, HomeScreen)
    await wait_until(pilot, lambda: bool(app.config.connections))
    await pilot.press("n")
    await wait_screen(pilot, ExportBuilderScreen)
    builder = screen_of(pilot, ExportBuilderScreen)
    builder.show_tab("tab-source")
    await type_into(pilot, "#path", str(csv))
    await pilot.click("#load")
    await wait_until(pilot, lambda: builder.frame is not None, tries=1500)
    return builder


async def checked(
    pilot: Pilot[Any], builder: ExportBuilderScreen, needle: str = "valid and"
) -> str:
    builder.show_tab("tab-check")
    checks = builder.query_one("#checks", Static)
    await wait_until(pilot, lambda: needle in text(checks), tries=1500)
    return text(checks)


# ---- 2, 3: the check runs on the filtered rows, and says what will be sent -----------------------
async def test_check_counts_only_the_rows_the_filter_keeps(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(people_csv(tmp_path / "people.csv"), filter="country = 'US'")
    results: list[Export | None] = []
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await edit(pilot, results)
        report = await checked(pilot, builder)
        assert "Checked all 10 rows matching country = 'US':" in report
        # drop_field (the default): the two US rows with a bad phone still go, without it
        assert "10 valid and would be sent" in report
        assert "2 invalid or shared phones: the phone is dropped, the row still sent" in report
        builder.query_one("#invalid-reject").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#invalid-reject")
        checks = builder.query_one("#checks", Static)
        await wait_until(pilot, lambda: "the row is skipped" in text(checks))
        report = text(checks)
        assert "\n8 valid and would be sent" in report
        assert "Invalid rows are skipped" in report
        await pilot.click("#save")
        await wait_screen(pilot, HomeScreen)
    [saved] = results
    assert saved is not None and saved.on_invalid_field == "reject_row"


async def test_check_says_first_500_of_the_matching_rows(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(sample_csv(tmp_path / "customers.csv", rows=1_300), filter="tier == 'gold'")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await edit(pilot)
        count = builder.query_one("#count", Static)
        await wait_until(pilot, lambda: "650 rows match" in text(count), tries=1500)
        report = await checked(pilot, builder)
        assert "Checked the first 500 of the 650 rows matching tier == 'gold':" in report
        # rows 3, 13, 23, … have a broken email and are gold: one in five of the gold rows
        assert "400 valid and would be sent" in report
        assert "100 invalid emails" in report


async def test_columns_and_check_say_what_will_be_sent(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await new_builder(pilot, people_csv(tmp_path / "people.csv"))
        builder.show_tab("tab-columns")
        await pilot.pause()
        # location fields are guessed and on screen, not folded away
        assert not builder.query(Collapsible)
        for field in ("city", "country"):
            select = builder.query_one(f"#map-{field}", Select)
            assert select.value == field
            assert on_screen(app, select)
        props = builder.query_one("#properties", SelectionList)
        offered = [props.get_option_at_index(i).value for i in range(props.option_count)]
        assert offered == ["tier", "notes"]  # mapped columns are not offered again
        assert props.selected == []  # opt-in, and the screen says so
        rule = text(builder.query_one("#properties-rule", Static))
        assert "only the ticked columns are sent" in rule
        props.select("tier")
        await pilot.pause()
        assert "1 of 2 ticked" in text(builder.query_one("#properties-rule", Static))
        builder.query_one("#map-last_name", Select).value = "notes"
        await wait_until(pilot, lambda: props.option_count == 1)
        await checked(pilot, builder)
        summary = text(builder.query_one("#send-summary", Static))
        assert "email ← email" in summary and "phone_number ← phone" in summary
        assert "last_name ← notes" in summary
        assert "location: city ← city, country ← country" in summary
        assert "custom properties: tier" in summary
        assert "not sent" not in summary  # every column is used now
        labels = [
            str(b.label) for b in builder.query("#on-invalid RadioButton").results(RadioButton)
        ]
        assert "the customer is still imported, with a warning" in labels[0]


# ---- 5: filter help and a caret under the fault --------------------------------------------------
async def test_filter_shows_syntax_columns_and_a_caret(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await new_builder(pilot, sample_csv(tmp_path / "customers.csv"))
        help_text = text(builder.query_one("#filter-help", Static))
        assert "Example: country = 'US' AND orders > 3" in help_text
        assert "Columns: email, phone, first_name, city, tier" in help_text
        bad = "tier == 'gold' and"
        try:
            compile_filter(bad, ["email", "phone", "first_name", "city", "tier"])
        except FilterError as exc:
            position = exc.position
        assert position == len(bad)
        await type_into(pilot, "#filter", bad)
        caret = builder.query_one("#filter-caret", Static)
        await wait_until(pilot, lambda: caret.display and "^" in text(caret), tries=800)
        await pilot.pause()
        field = builder.query_one("#filter", Input)
        column = caret.content_region.x + text(caret).index("^")
        assert column == field.content_region.x + position  # right under the end of the text
        await type_into(pilot, "#filter", "tier == 'gold'")
        await wait_until(pilot, lambda: "rows match" in text(builder.query_one("#count", Static)))
        assert not caret.display


def test_caret_window_on_a_long_filter() -> None:
    expr = "a = 1 AND " * 30 + "b = \x1b"
    echo, mark = caret_lines(expr, len(expr) - 1)
    assert echo.startswith("…") and echo.endswith("\\x1b")
    assert mark.index("^") == echo.index("\\x1b")


# ---- 6: an export whose connection was removed ---------------------------------------------------
async def test_export_whose_connection_was_removed_opens(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(sample_csv(tmp_path / "customers.csv"), connection="demo")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await edit(pilot)
        warning = builder.query_one("#connection-missing", Static)
        assert warning.display
        assert "Connection 'demo' was removed: pick another" in text(warning)
        assert builder.query_one("#connection", Select).value == Select.NULL
        builder.query_one("#save", Button).press()  # a click could miss on a loaded machine
        await wait_until(
            pilot, lambda: "'demo' was removed" in text(builder.query_one("#save-error", Static))
        )
        assert app.screen is builder
        builder.query_one("#connection", Select).value = "sandbox"
        await pilot.pause()
        assert not warning.display
        builder.query_one("#save", Button).press()
        await wait_screen(pilot, HomeScreen)
    assert load_config().exports["vip"].connection == "sandbox"


# ---- 7: ctrl+q asks while the builder holds unsaved changes --------------------------------------
async def test_ctrl_q_in_the_builder_asks_first() -> None:
    add_sandbox_connection(NOWHERE)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.press("n")
        await wait_screen(pilot, ExportBuilderScreen)
        builder = app.screen
        await pilot.press("d", "r", "a", "f", "t")
        await pilot.press("ctrl+q")
        await wait_screen(pilot, ConfirmModal)
        await pilot.press("n")  # keep editing
        await wait_until(pilot, lambda: app.screen is builder)
        assert app.is_running
        assert builder.query_one("#name", Input).value == "draft"
        await pilot.press("ctrl+q")
        await wait_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running)


async def test_ctrl_q_in_an_untouched_builder_quits() -> None:
    add_sandbox_connection(NOWHERE)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.press("n")
        await wait_screen(pilot, ExportBuilderScreen)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running)


# ---- 8: data is text -----------------------------------------------------------------------------
HOSTILE = ("x[/]y", "[link=https://e.x]a[/link]", "[@click=app.quit]q[/]", "\x1b]2;pwned\x07")
SAFE = ("x[/]y", "[link=https://e.x]a[/link]", "[@click=app.quit]q[/]", "\\x1b]2;pwned\\x07")


def hostile_csv(tmp_path: Path) -> Path:
    folder = tmp_path / "x[" / "]y [@click=app.quit]q["
    folder.mkdir(parents=True)
    path = folder / "] \x1b]2;pwned\x07.csv"
    rows = ["email," + ",".join(HOSTILE)]
    rows += [f"u{i}@example.com," + ",".join(HOSTILE) for i in range(3)]
    path.write_text("\n".join(rows) + "\n")
    return path


def on_screen(app: KlaviyoApp, widget: Widget) -> bool:
    try:
        return app.screen.find_widget(widget).region.area > 0
    except NoWidget:
        return False


def unsafe_segments(app: KlaviyoApp) -> list[tuple[str, RichSegment]]:
    """Rendered segments of every visible widget that link, act or carry a control character."""
    found = []
    for widget in app.screen.query("*"):
        if not widget.display or widget.size.area == 0 or not on_screen(app, widget):
            continue
        for strip in widget.render_lines(Region(0, 0, *widget.size)):
            for seg in strip:
                style = seg.style
                acts = style is not None and (style.link or "@click" in (style.meta or {}))
                if acts or "\x1b" in seg.text or "\x07" in seg.text:
                    found.append((type(widget).__name__, seg))
    return found


async def test_data_from_files_and_klaviyo_is_shown_as_text(sandbox, tmp_path: Path) -> None:
    add_sandbox_connection(sandbox.base_url)
    [list_id] = create_lists(sandbox.base_url, ["[VIP]"])
    csv = hostile_csv(tmp_path)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.press("n")
        await wait_screen(pilot, ExportBuilderScreen)
        builder = screen_of(pilot, ExportBuilderScreen)
        await type_into(pilot, "#list-id", list_id)
        await pilot.click("#check-list")
        label = builder.query_one("#list-label", Static)
        await wait_until(pilot, lambda: "[VIP]" in text(label), tries=1500)
        assert builder.list_name == "[VIP]"
        assert not unsafe_segments(app)

        builder.show_tab("tab-source")
        await type_into(pilot, "#path", str(csv))
        await pilot.click("#load")
        await wait_until(pilot, lambda: builder.frame is not None, tries=1500)
        await wait_until(pilot, lambda: "rows" in text(builder.query_one("#count", Static)))
        path = builder.query_one("#path", Input)
        assert path.value == str(csv)  # the real name is read; ESC shows as ␛
        assert "␛]2;pwned" in "".join(seg.text for seg in path.render_line(0))
        status = text(builder.query_one("#source-status", Static))
        assert "] \\x1b]2;pwned\\x07.csv: 5 columns" in status
        help_text = text(builder.query_one("#filter-help", Static))
        assert all(f'"{safe}"' in help_text for safe in SAFE)
        assert not unsafe_segments(app)

        builder.show_tab("tab-columns")
        await pilot.pause()
        table = builder.query_one("#preview", DataTable)
        assert [c.label.plain for c in table.ordered_columns] == ["email", *SAFE]
        assert [c.plain for c in table.get_row_at(0)] == ["u0@example.com", *SAFE]
        props = builder.query_one("#properties", SelectionList)
        prompts = [str(props.get_option_at_index(i).prompt) for i in range(props.option_count)]
        assert prompts == list(SAFE)
        for value in HOSTILE:
            props.select(value)
        await pilot.pause()
        assert not unsafe_segments(app)

        await checked(pilot, builder)
        summary = text(builder.query_one("#send-summary", Static))
        assert "custom properties: " + ", ".join(SAFE) in summary
        assert not unsafe_segments(app)
        screenshot = app.export_screenshot()
        assert "\x1b" not in screenshot and "\x07" not in screenshot
        assert app.is_running and app.screen is builder


@pytest.mark.parametrize("connection", ["sandbox", "demo"])
async def test_escape_on_an_untouched_export_leaves_at_once(
    tmp_path: Path, connection: str
) -> None:
    add_sandbox_connection(NOWHERE)
    save_export(
        sample_csv(tmp_path / "customers.csv"), connection=connection, filter="tier = 'gold'"
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await edit(pilot)
        await wait_until(pilot, lambda: "rows match" in text(builder.query_one("#count", Static)))
        await pilot.press("escape")
        await wait_screen(pilot, HomeScreen)


# ---- column names are the header's, spaces and all --------------------------------------------
async def test_columns_ending_in_a_space_are_picked_shown_and_saved_exactly(tmp_path: Path) -> None:
    add_sandbox_connection(NOWHERE)
    csv = tmp_path / "sp.csv"
    csv.write_text("email,code,code ,name \nsp@example.com,REAL,SPACE,Ann\n", encoding="utf-8")
    store = ConfigStore()
    store.put_segment(Segment("vip", str(csv)))
    mapping = Mapping(email="email", first_name="name ", properties=("code ",))
    store.put_export(Export("vip", "sandbox", "Y6nRLr", ("vip",), mapping, list_name="VIP"))
    store.save()
    results: list[Export | None] = []
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await edit(pilot, results)
        builder.show_tab("tab-columns")
        await pilot.pause()
        assert builder.query_one("#map-first_name", Select).value == "name "
        props = builder.query_one("#properties", SelectionList)
        options = [props.get_option_at_index(i) for i in range(props.option_count)]
        assert [(o.value, str(o.prompt)) for o in options] == [
            ("code", "code"),
            ("code ", "'code '"),  # told apart from `code` on screen
        ]
        assert props.selected == ["code "]
        await checked(pilot, builder)
        summary = text(builder.query_one("#send-summary", Static))
        assert "first_name ← 'name '" in summary and "custom properties: 'code '" in summary
        assert "not sent: code" in summary
        props.select("code")
        await pilot.pause()
        await pilot.click("#save")
        await wait_screen(pilot, HomeScreen)
    [saved] = results
    assert saved is not None
    # the saved property keeps its place; the one ticked now comes after it
    assert (saved.mapping.first_name, saved.mapping.properties) == ("name ", ("code ", "code"))
    assert load_config().exports["vip"].mapping == saved.mapping
