"""Pickers used by the export builder: a Klaviyo list from the account, and a source file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import (
    Button,
    DirectoryTree,
    Input,
    Label,
    LoadingIndicator,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option

from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import plural
from klaviyo_tui.store.config import Connection
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.base import BaseModal

PICKER_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 90%; max-width: 100; height: 90%; padding: 0 1;
    border: thick $primary; background: $surface;
}}
{name} .title {{ text-style: bold; margin-bottom: 1; }}
{name} .row {{ height: auto; }}
{name} .row Input {{ width: 1fr; }}
{name} .row Button {{ width: auto; min-width: 0; padding: 0 1; margin-left: 1; }}
{name} .row Button#cancel {{ margin-left: 0; }}
{name} OptionList, {name} DirectoryTree {{ height: 1fr; }}
{name} #status {{ height: auto; color: $text-muted; }}
{name} #status.-error {{ color: $error; }}
{name} LoadingIndicator {{ height: 1; }}
"""


class ListPickerScreen(BaseModal[Any]):
    """Every list of the account (all pages), searchable, plus "create new list"."""

    DEFAULT_CSS = PICKER_CSS.format(name="ListPickerScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, connection: Connection, suggested_name: str = "") -> None:
        super().__init__()
        self.connection = connection
        self.suggested_name = suggested_name
        self.lists: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            title = f"Pick a list in “{safe_text(self.connection.display_name)}”"
            yield Label(Content(title), classes="title")
            yield Input(placeholder="Type to search lists by name or ID", id="search", compact=True)
            yield LoadingIndicator()
            yield Static("Loading lists from Klaviyo…", id="status")
            yield OptionList(id="lists")
            yield Label("Or create a new list:", classes="help")
            with Horizontal(classes="row"):
                yield Input(
                    self.suggested_name, placeholder="New list name", id="new-name", compact=True
                )
                yield Button("Create list", id="create", variant="success", compact=True)
            with Horizontal(classes="row"):
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#search", Input).focus()
        self.load()

    @work(exclusive=True, group="lists", exit_on_error=False)
    async def load(self) -> None:
        from klaviyo_tui.services.lists import find_lists

        app = self.app
        status = self.query_one("#status", Static)
        try:
            self.lists = await find_lists(app.config, self.connection.name)
        except Exception as exc:
            status.update(Content(describe_error(exc).as_text()))
            status.add_class("-error")
            return
        finally:
            self.query_one(LoadingIndicator).display = False
        self._fill(self.query_one("#search", Input).value)
        if not self.lists:
            self.query_one("#status", Static).update(
                "This account has no lists yet: create one below."
            )
            self.query_one("#new-name", Input).focus()

    def _fill(self, search: str) -> None:
        needle = search.strip().lower()
        shown = [
            lst for lst in self.lists if needle in lst.name.lower() or needle in lst.id.lower()
        ]
        options = self.query_one("#lists", OptionList)
        options.clear_options()
        options.add_options(
            Option(Content.assemble(safe_text(lst.name), "  ", (safe_text(lst.id), "dim")), lst.id)
            for lst in shown
        )
        if shown:
            options.highlighted = 0  # the list's focus and cursor show at once
        total = plural(len(self.lists), "list")
        status = f"{len(shown):,} of {total}" + (" match" if needle else "")
        self.query_one("#status", Static).update(status)

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        if self.lists:
            self._fill(event.value)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        """Enter in the search: the one match is picked; with several, the list takes over."""
        options = self.query_one("#lists", OptionList)
        if options.option_count == 1:
            options.highlighted = 0
            options.action_select()
        elif options.option_count:
            options.focus()
            options.highlighted = 0

    @on(OptionList.OptionSelected, "#lists")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        chosen = next((lst for lst in self.lists if lst.id == event.option.id), None)
        if chosen is not None:
            self.dismiss(chosen)

    @on(Input.Submitted, "#new-name")
    @on(Button.Pressed, "#create")
    def _create_pressed(self) -> None:
        name = self.query_one("#new-name", Input).value.strip()
        if not name:
            self.notify("Type a name for the new list.", severity="warning")
            return
        self.create(name)

    @work(exclusive=True, group="create", exit_on_error=False)
    async def create(self, name: str) -> None:
        from klaviyo_tui.klaviyo.exceptions import AmbiguousListName
        from klaviyo_tui.services.lists import create_list

        app = self.app
        try:
            created, was_new = await create_list(app.config, self.connection.name, name)
        except Exception as exc:
            info = describe_error(exc)
            self.notify(info.as_text(), title=info.title, severity="error", markup=False)
            if isinstance(exc, AmbiguousListName):  # show the lists of that name, to pick one
                self.query_one("#search", Input).value = name
                self.load()
            return
        verb = "Created" if was_new else "Found existing"
        self.notify(f"{verb} list “{created.name}” ({created.id}).", markup=False)
        self.dismiss(created)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class SourceTree(DirectoryTree):
    """A DirectoryTree that shows folders and only the file types we can read."""

    def __init__(self, path: Path, extensions: Iterable[str], **kwargs: Any) -> None:
        self.extensions = {e.lower() for e in extensions}
        super().__init__(path, **kwargs)

    def process_label(self, label: str | Text) -> Text:
        """File names are data: shown as text, control characters visible."""
        return Text(safe_text(label.plain if isinstance(label, Text) else label))

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p
            for p in paths
            if not p.name.startswith(".")
            and (
                p.is_dir()
                or "".join(p.suffixes[-2:]).lower() in self.extensions
                or p.suffix.lower() in self.extensions
            )
        ]


class FilePickerScreen(BaseModal[Path | None]):
    """Choose a CSV/Parquet/xlsx/JSONL file (or a SQLite database) to read rows from."""

    DEFAULT_CSS = PICKER_CSS.format(name="FilePickerScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        from klaviyo_tui.input.sources import SUPPORTED_EXTENSIONS, SUPPORTED_SUMMARY

        exts = sorted(SUPPORTED_EXTENSIONS)
        with Vertical():
            yield Label("Choose a source file", classes="title")
            yield Static(f"Shown: folders and {SUPPORTED_SUMMARY}.", id="status", markup=False)
            with Horizontal(classes="row"):
                yield Input(str(self.start), id="folder", compact=True)
                yield Button("Go", id="go", compact=True)
            yield SourceTree(self.start, exts, id="tree")
            with Horizontal(classes="row"):
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#tree", SourceTree).focus()

    @on(Input.Submitted, "#folder")
    @on(Button.Pressed, "#go")
    def _go(self) -> None:
        folder = Path(self.query_one("#folder", Input).value).expanduser()
        if folder.is_file():
            self.dismiss(folder)
        elif folder.is_dir():
            self.query_one("#tree", SourceTree).path = folder
        else:
            self.notify(f"No such folder: {folder}", severity="error")

    @on(DirectoryTree.FileSelected)
    def _chosen(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
