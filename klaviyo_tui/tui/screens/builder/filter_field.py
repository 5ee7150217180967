"""The segment filter field: SQL WHERE text, its syntax and columns on screen, the matching count.

A filter that cannot be used says why, with a caret under the character at fault
(`FilterError.position`). Counting reads the whole source, so it runs in a thread, half a second
after the last keystroke.
"""

from __future__ import annotations

import dataclasses

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from klaviyo_tui.store.config import Segment
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.builder.fields import CONTROL_PICTURES, filter_name, shown

SYNTAX = (
    "Operators: = != < <= > >= IN ('a', 'b') LIKE 'a%' IS NULL BETWEEN 1 AND 9\n"
    "Combine with AND, OR, NOT and ( ). Text goes in 'single quotes'.\n"
    "Example: country = 'US' AND orders > 3"
)
CARET_WIDTH = 70  # characters of the filter echoed around the fault


def caret_lines(text: str, position: int, width: int = CARET_WIDTH) -> tuple[str, str]:
    """The filter (a window of it around `position`, made safe) and a caret line under the fault."""
    start = max(0, min(position - width // 2, len(text) - width))
    before = shown(text[start:position])
    after = shown(text[position : start + width])
    lead = "…" if start > 0 else ""
    tail = "…" if start + width < len(text) else ""
    return f"{lead}{before}{after}{tail}", " " * cell_len(lead + before) + "^"


class FilterField(Vertical):
    """Filter input, caret, count and help. The Source tab sets `source`; posts `Counted`."""

    class Counted(Message):
        """The filter was checked against the source: how many rows match, or that it is wrong."""

        def __init__(self, filter: str | None, matching: int | None, error: bool) -> None:
            super().__init__()
            self.filter = filter
            self.matching = matching
            self.error = error

    def __init__(self, value: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._value = value
        self.source: Segment | None = None  # the loaded source, without a filter
        self.columns: list[str] = []
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("Filter (optional, SQL WHERE)", classes="field-label")
        yield Input(
            self._value,
            placeholder="e.g. country = 'US' AND orders > 3",
            id="filter",
            compact=True,
            highlighter=CONTROL_PICTURES,
        )
        caret = Static("", id="filter-caret", classes="error-text")
        caret.display = False
        yield caret
        yield Static("", id="count", classes="help")
        yield Static(self._help(), id="filter-help", classes="help")

    @property
    def value(self) -> str | None:
        return self.query_one("#filter", Input).value.strip() or None

    @property
    def has_error(self) -> bool:
        return self.query_one("#count", Static).has_class("error-text")

    def set_source(self, source: Segment | None, columns: list[str]) -> None:
        """A source was loaded (or failed): show its columns and count again."""
        self.source = dataclasses.replace(source, filter=None) if source else None
        self.columns = columns
        self.query_one("#filter-help", Static).update(self._help())
        self._schedule()

    def _help(self) -> Content:
        if not self.columns:
            return Content(SYNTAX)
        names = ", ".join(shown(filter_name(c), 30) for c in self.columns[:30])
        more = f", … ({len(self.columns) - 30} more)" if len(self.columns) > 30 else ""
        return Content.assemble(SYNTAX, "\n", ("Columns: ", "bold"), f"{names}{more}")

    @on(Input.Changed, "#filter")
    def _schedule(self) -> None:
        count = self.query_one("#count", Static)
        if self.source is None:
            self._show(Content(""), error=False)
            return
        count.update(Content("Counting matching rows…"))
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.5, self._count_now)

    def _count_now(self) -> None:
        if self.source is not None:
            self._count(dataclasses.replace(self.source, filter=self.value), self.columns)

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def _count(self, segment: Segment, columns: list[str]) -> None:
        from klaviyo_tui.input.filters import FilterError, compile_filter, count_matching
        from klaviyo_tui.input.sources import SourceError

        position: int | None = None
        matching: int | None = None
        try:
            compile_filter(segment.filter, columns)  # quick; its message lists every column
            matching = count_matching(segment)
            text = Content(
                f"{matching:,} rows match." if segment.filter else f"{matching:,} rows (no filter)."
            )
        except SourceError:  # already reported above the filter
            text = Content("")
        except Exception as exc:
            info = describe_error(exc)
            position = exc.position if isinstance(exc, FilterError) else None
            text = Content.assemble((info.title, "bold"), ": ", info.as_text())
        self.app.call_from_thread(self._counted, segment.filter, text, matching, position)

    def _counted(
        self, expr: str | None, text: Content, matching: int | None, position: int | None
    ) -> None:
        error = matching is None and bool(text.plain)
        self._show(text, error=error)
        caret = self.query_one("#filter-caret", Static)
        if expr and position is not None:
            caret.update(self._caret(expr, position))
        caret.display = bool(expr and position is not None)
        self.post_message(self.Counted(expr, matching, error))

    def _caret(self, expr: str, position: int) -> Content:
        """A caret right under the fault in the input; or, when the input cannot show the whole
        filter as typed, the filter echoed with the caret under it."""
        field = self.query_one("#filter", Input)
        typed = field.value
        lead = len(typed) - len(typed.lstrip())
        fits = (
            typed.strip() == expr
            and shown(typed) == typed
            and cell_len(typed) < field.content_size.width
            and field.scroll_offset.x == 0
        )
        if fits:
            indent = field.content_region.x - self.content_region.x
            pad = " " * (indent + cell_len(typed[: lead + position]))
            return Content.styled(f"{pad}^ here", "bold")
        echo, mark = caret_lines(expr, position)
        return Content.assemble(echo, "\n", (f"{mark} here", "bold"))

    def _show(self, text: Content, *, error: bool) -> None:
        count = self.query_one("#count", Static)
        count.update(text)
        count.set_class(error, "error-text")
        if not error:
            self.query_one("#filter-caret").display = False
