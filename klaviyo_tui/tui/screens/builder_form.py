"""Reading the export builder's widgets back: the segment, the export, and whether it changed.

Plain functions over the screen, so the screen module keeps only event handling.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import Input, RadioButton, Select, Static

from klaviyo_tui.store.config import Export, Segment
from klaviyo_tui.tui.screens.connection import slugify
from klaviyo_tui.tui.widgets.columns import ColumnsPane

if TYPE_CHECKING:
    from klaviyo_tui.tui.screens.builder import ExportBuilderScreen


def read_segment(screen: ExportBuilderScreen) -> Segment | str:
    """The segment the Source tab describes, or what is missing."""
    name = export_name(screen) or "segment"
    filter_text = screen.query_one("#filter", Input).value.strip() or None
    if screen.query_one("#kind-sql", RadioButton).value:
        url = screen.query_one("#sql-url", Input).value.strip()
        query = screen.query_one("#sql-query", Input).value.strip()
        if not url or not query:
            return "Give the database URL and the SQL query (Source tab)."
        return Segment(name, url, query=query, filter=filter_text)
    path = screen.query_one("#path", Input).value.strip()
    if not path:
        return "Choose a source file (Source tab › Browse…)."
    return Segment(name, str(Path(path).expanduser()), filter=filter_text)


def export_name(screen: ExportBuilderScreen) -> str:
    return (
        slugify(screen.query_one("#name", Input).value.strip(), set())
        if screen.query_one("#name", Input).value.strip()
        else ""
    )


def read_export(screen: ExportBuilderScreen) -> tuple[Export, Segment] | str:
    """The export and its segment, or the first thing that is missing (with where to fix it)."""
    from klaviyo_tui.run.schedule import validate_schedule

    app = screen.app
    name = screen.existing.name if screen.existing else export_name(screen)
    if not name:
        return "Give the export a name (List tab)."
    if not screen.existing and name in app.config.exports:
        return f"An export named {name!r} exists already; choose another name."
    if not screen.list_id:
        return "Choose the Klaviyo list (List tab)."
    segment = read_segment(screen)
    if isinstance(segment, str):
        return segment
    if screen.frame is None:
        return "Load the source's columns (Source tab › Load columns)."
    if screen.query_one("#count", Static).has_class("error-text"):
        return "Fix the filter first (Source tab): it is not a valid condition."
    mapping = screen.query_one(ColumnsPane).mapping()
    if isinstance(mapping, str):
        return mapping
    schedule = screen.query_one("#schedule", Input).value.strip() or None
    if schedule and (problem := validate_schedule(schedule)):
        return f"Schedule: {problem}"
    segment = Segment(name, segment.source, query=segment.query, filter=segment.filter)
    export = Export(
        name=name,
        connection=str(screen.query_one("#connection", Select).value),
        list_id=screen.list_id,
        list_name=screen.list_name,
        segments=(name,),
        mapping=mapping,
        default_region=screen.query_one("#region", Input).value.strip().upper() or "US",
        schedule=schedule,
        # not on the form: an edit keeps the export's field policy (a new one has the default)
        on_invalid_field=screen.existing.on_invalid_field if screen.existing else "drop_field",
    )
    return export, segment


def form_state(screen: ExportBuilderScreen) -> tuple[object, ...]:
    inputs = tuple(w.value for w in screen.query(Input))
    kind = screen.query_one("#kind-sql", RadioButton).value
    return (*inputs, kind, screen.list_id, str(screen.query_one("#connection", Select).value))


def has_changes(screen: ExportBuilderScreen) -> bool:
    """Would leaving now lose something the user did?"""
    app = screen.app
    if screen.existing is not None:
        built = read_export(screen)
        if not isinstance(built, str):
            export, segment = built
            old = app.config.segments.get(screen.existing.segments[0])
            return export != screen.existing or segment != old
        return form_state(screen) != screen._baseline
    return form_state(screen) != screen._baseline or screen.frame is not None
