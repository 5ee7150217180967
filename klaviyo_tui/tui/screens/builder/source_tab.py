"""The Source tab: a file or an SQL query, its first rows read in a thread, and the filter.

Loading posts `SourceLoaded` (or `SourceFailed`) up to the screen, which hands the rows to the
Columns tab. File names and read errors are shown as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import getters, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, RadioSet, Static

from klaviyo_tui.store.config import Segment
from klaviyo_tui.tui.app import KlaviyoApp
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.builder.fields import CONTROL_PICTURES, shown
from klaviyo_tui.tui.screens.builder.filter_field import FilterField
from klaviyo_tui.tui.widgets.toggles import RadioButton

PREVIEW_ROWS = 500  # read to show columns and guess the email column


class SourceTab(VerticalScroll):
    """Source kind, path or URL + query, Load columns, status, and the FilterField."""

    app = getters.app(KlaviyoApp)

    class SourceLoaded(Message):
        """The first rows of the source were read."""

        def __init__(self, frame: Any, segment: Segment, email: str | None) -> None:
            super().__init__()
            self.frame = frame
            self.segment = segment
            self.email = email

    class SourceFailed(Message):
        """The source could not be read; the columns shown before belong to another source."""

    def __init__(self, segment: Segment | None, *, id: str | None = None) -> None:
        super().__init__(can_focus=False, id=id)
        self.initial = segment
        self.loaded: Segment | None = None

    def compose(self) -> ComposeResult:
        segment = self.initial
        is_sql = bool(segment and segment.query)
        with RadioSet(id="source-kind"):
            yield RadioButton("File (CSV, Parquet, xlsx, JSONL)", value=not is_sql, id="kind-file")
            yield RadioButton("SQL database (URL + query)", value=is_sql, id="kind-sql")
        with Horizontal(classes="row", id="file-row"):
            yield Input(
                segment.source if segment and not is_sql else "",
                placeholder="/path/to/customers.csv",
                id="path",
                compact=True,
                highlighter=CONTROL_PICTURES,
            )
            yield Button("Browse…", id="browse", compact=True)
        yield Input(
            segment.source if segment and is_sql else "",
            placeholder="sqlite:///shop.db or postgresql://user@host/db",
            id="sql-url",
            compact=True,
            highlighter=CONTROL_PICTURES,
        )
        yield Input(
            segment.query or "" if segment else "",
            placeholder="SELECT email, phone FROM customers",
            id="sql-query",
            compact=True,
            highlighter=CONTROL_PICTURES,
        )
        with Horizontal(classes="row"):
            yield Button("Load columns", id="load", variant="primary", compact=True)
        yield Static("", id="source-status", classes="help")
        yield FilterField(segment.filter or "" if segment else "", id="filter-field")

    def on_mount(self) -> None:
        self._show_kind()

    @property
    def is_sql(self) -> bool:
        return self.query_one("#kind-sql", RadioButton).value

    def segment(self, name: str = "segment") -> Segment | str:
        """The segment the fields describe (with the filter), or what is missing."""
        filter_text = self.query_one(FilterField).value
        if self.is_sql:
            url = self.query_one("#sql-url", Input).value.strip()
            query = self.query_one("#sql-query", Input).value.strip()
            if not url or not query:
                return "Give the database URL and the SQL query (Source tab)."
            return Segment(name, url, query=query, filter=filter_text)
        path = self.query_one("#path", Input).value.strip()
        if not path:
            return "Choose a source file (Source tab › Browse…)."
        return Segment(name, str(Path(path).expanduser()), filter=filter_text)

    def first_focus(self) -> Widget:
        if self.is_sql:
            return self.query_one("#sql-url")
        if self.loaded is None:
            has_path = bool(self.query_one("#path", Input).value.strip())
            return self.query_one("#load" if has_path else "#path")
        return self.query_one("#filter")

    def suggest(self, path: Path) -> None:
        """Fill in the demo's sample file without loading it."""
        self.query_one("#path", Input).value = str(path)
        note = "Demo: the sample customers file is filled in. Press Load columns."
        self.query_one("#source-status", Static).update(Content(note))

    @on(RadioSet.Changed, "#source-kind")
    def _show_kind(self) -> None:
        sql = self.is_sql
        self.query_one("#file-row").display = not sql
        self.query_one("#sql-url").display = sql
        self.query_one("#sql-query").display = sql

    @on(Button.Pressed, "#browse")
    def _browse(self) -> None:
        from klaviyo_tui.tui.screens.pickers import FilePickerScreen

        if any(isinstance(s, FilePickerScreen) for s in self.app.screen_stack):
            return  # presses queued before the picker showed (space typed on the button)
        typed = self.query_one("#path", Input).value
        current = Path(typed or ".").expanduser()
        start = current.parent if current.is_file() else current if current.is_dir() else Path.cwd()
        if self.app.demo and not typed:
            start = self.app.demo.sample_path.parent

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#path", Input).value = str(path)
                self.load()

        self.app.push_screen(FilePickerScreen(start.resolve()), chosen)

    @on(Input.Submitted, "#path,#sql-query,#sql-url")
    @on(Button.Pressed, "#load")
    def load(self) -> None:
        """Read the first rows of the source in a thread."""
        segment = self.segment()
        status = self.query_one("#source-status", Static)
        if isinstance(segment, str):
            status.update(Content(segment))
            return
        status.remove_class("error-text")
        status.update(Content("Reading the first rows…"))
        self._read_preview(segment)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _read_preview(self, segment: Segment) -> None:
        from klaviyo_tui.input.preview import detect_email_column
        from klaviyo_tui.input.sources import preview

        try:
            frame = preview(segment, n=PREVIEW_ROWS)
            email = detect_email_column(frame)
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._loaded, segment, frame, email)

    def _failed(self, exc: Exception) -> None:
        info = describe_error(exc)
        self.loaded = None
        status = self.query_one("#source-status", Static)
        status.update(Content.assemble((info.title, "bold"), ": ", info.as_text()))
        status.add_class("error-text")
        self.query_one(FilterField).set_source(None, [])
        self.post_message(self.SourceFailed())

    def _loaded(self, segment: Segment, frame: Any, email: str | None) -> None:
        self.loaded = segment
        columns = [str(c) for c in frame.columns]
        what = "SQL query" if segment.query else shown(Path(segment.source).name, 50)
        found = f"email column: {shown(email, 30)}" if email else "no email column found: pick it"
        status = self.query_one("#source-status", Static)
        status.remove_class("error-text")
        status.update(
            Content.assemble(
                (what, "bold"), f": {len(columns)} columns ({found}). Next: the Columns tab."
            )
        )
        self.query_one(FilterField).set_source(segment, columns)
        self.post_message(self.SourceLoaded(frame, segment, email))
        focused = self.screen.focused
        if focused is not None and self in focused.ancestors:  # still here: the filter is next
            self.screen.set_focus(self.query_one("#filter"))
