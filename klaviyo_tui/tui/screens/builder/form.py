"""Reading the whole builder back: the export and its segment, and whether anything changed.

Plain functions over the screen and its tabs, so the screen module keeps only orchestration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.widgets import Input, Select

from klaviyo_tui.errors import AppError
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.sync_config import SyncSettings
from klaviyo_tui.tui.screens.builder.check_tab import CheckTab
from klaviyo_tui.tui.screens.builder.columns_tab import ColumnsTab
from klaviyo_tui.tui.screens.builder.filter_field import FilterField
from klaviyo_tui.tui.screens.builder.list_tab import ListTab
from klaviyo_tui.tui.screens.builder.source_tab import SourceTab
from klaviyo_tui.tui.screens.builder.sync_tab import SyncTab
from klaviyo_tui.tui.widgets.toggles import Checkbox, RadioButton, SelectionList

if TYPE_CHECKING:
    from klaviyo_tui.tui.screens.builder.screen import ExportBuilderScreen


def source_changed(screen: ExportBuilderScreen) -> bool:
    """Is the loaded source another one than the export's saved segment reads?"""
    if not screen.existing or not screen.loaded_segment:
        return True
    old = screen.app.config.segments.get(screen.existing.segments[0])
    new = screen.loaded_segment
    return old is None or (old.source, old.query) != (new.source, new.query)


def read_export(screen: ExportBuilderScreen) -> tuple[Export, Segment] | str:
    """The export and its segment, or the first thing that is missing (with where to fix it)."""
    from klaviyo_tui.run.schedule import validate_schedule

    app = screen.app
    lists = screen.query_one(ListTab)
    name = screen.existing.name if screen.existing else lists.export_name()
    if not name:
        return "Give the export a name (List tab)."
    if not screen.existing and name in app.config.exports:
        return f"An export named {name!r} exists already; choose another name."
    connection = lists.connection()
    if connection is None:
        return lists.connection_problem()
    if not screen.list_id:
        return "Choose the Klaviyo list (List tab)."
    segment = screen.query_one(SourceTab).segment(name)
    if isinstance(segment, str):
        return segment
    loaded = screen.loaded_segment
    if screen.frame is None or loaded is None:
        return "Load the source's columns (Source tab › Load columns)."
    if (loaded.source, loaded.query) != (segment.source, segment.query):
        return "The source changed since its columns were loaded: press Load columns (Source tab)."
    if screen.query_one(FilterField).has_error:
        return "Fix the filter first (Source tab): it is not a valid condition."
    mapping = screen.query_one(ColumnsTab).mapping()
    if isinstance(mapping, str):
        return mapping
    check = screen.query_one(CheckTab)
    schedule = check.schedule()
    if schedule and (problem := validate_schedule(schedule)):
        return f"Schedule: {problem}"
    sync = read_sync(screen, mapping)
    if isinstance(sync, str):
        return sync
    old = screen.existing
    export = Export(
        name=name,
        connection=connection,
        list_id=screen.list_id,
        list_name=screen.list_name,
        segments=(name,),
        mapping=mapping,
        default_region=check.default_region(),
        schedule=schedule,
        on_invalid_field=check.on_invalid(),
        verify=screen.query_one(SyncTab).verify(),
        sync=sync,
        confirm_timeout_minutes=old.confirm_timeout_minutes if old else None,  # no field: kept
    )
    return export, segment


def read_sync(screen: ExportBuilderScreen, mapping: Mapping) -> SyncSettings | str:
    """The Sync tab's settings, checked as `exports create` checks them (services)."""
    from klaviyo_tui.services.export_sync import check_sync

    tab = screen.query_one(SyncTab)
    sync = tab.settings()
    if isinstance(sync, str):
        return sync
    if problem := tab.verify_problem():
        return problem
    try:
        check_sync(sync, mapping, screen.query_one(ColumnsTab).columns)
    except AppError as error:
        return f"Sync tab: {error.message}. {error.hint}".rstrip()
    return sync


def storing(export: Export, segment: Segment) -> Callable[[Any], None]:
    """The config edit that saves the export and its segment (for `app.save_config`)."""

    def edit(store: Any) -> None:
        store.put_segment(segment)
        store.put_export(export)

    return edit


def check_inputs(
    screen: ExportBuilderScreen,
) -> tuple[Segment | str, Mapping | str, int | None, list[str]]:
    """What the Check tab validates: the loaded source with the filter, the mapping, how many rows
    match, the columns; or, instead of the source or mapping, what is missing."""
    source: Segment | str = "Load a source first (Source tab)."
    if screen.loaded_segment is not None:
        source = screen.query_one(SourceTab).segment()
        if isinstance(source, Segment) and screen.query_one(FilterField).has_error:
            source = "Fix the filter first (Source tab): it is not a valid condition."
    counted, matching = screen.matching
    if not isinstance(source, Segment) or counted != source.filter:
        matching = None  # counted for another filter: do not quote it
    columns = screen.query_one(ColumnsTab)
    return source, columns.mapping(), matching, columns.columns


def form_state(screen: ExportBuilderScreen) -> tuple[object, ...]:
    """Every value the user can change, to tell whether leaving would lose something."""
    inputs = tuple(w.value for w in screen.query(Input))
    radios = tuple(w.value for w in screen.query(RadioButton))
    radios += tuple(w.value for w in screen.query(Checkbox))
    selects = tuple(str(w.value) for w in screen.query(Select))
    ticked = tuple(tuple(w.selected) for w in screen.query(SelectionList))
    return (*inputs, *radios, *selects, *ticked, screen.list_id)


def has_changes(screen: ExportBuilderScreen) -> bool:
    """Would leaving now lose something the user did?"""
    if screen.existing is not None:
        built = read_export(screen)
        if not isinstance(built, str):
            export, segment = built
            old = screen.app.config.segments.get(screen.existing.segments[0])
            return export != screen.existing or segment != old
        return form_state(screen) != screen.baseline
    return form_state(screen) != screen.baseline or screen.frame is not None
