"""The Columns tab: the first rows, which column feeds each Klaviyo field, and custom properties.

Profile and location fields sit side by side, all visible. Columns already mapped to a field are
not offered again as custom properties, and properties are opt-in: only ticked columns are sent
(nothing leaves the source unless the user chose it). A column the config sends both ways (the
CLI and the file allow it) stays so, and the tab says so. Headers and cells are shown as text.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Label, Select, Static

from klaviyo_tui.services.exports import suggest_mapping
from klaviyo_tui.store.config import Mapping
from klaviyo_tui.tui.screens.builder.fields import FIELDS, LOCATION, cell, column_text
from klaviyo_tui.tui.widgets.toggles import SelectionList

TABLE_ROWS = 20
PROPERTIES_RULE = "Custom properties: only the ticked columns are sent."


class ColumnsTab(VerticalScroll):
    """Preview table plus mapping controls. `load()` fills it; `mapping()` reads it back."""

    class MappingChanged(Message):
        """A field or property changed; `mapping` is the new Mapping or what is missing."""

        def __init__(self, mapping: Mapping | str) -> None:
            super().__init__()
            self.mapping = mapping

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(can_focus=False, id=id)
        self.columns: list[str] = []
        self._offered: list[str] = []
        self._saved_properties: tuple[str, ...] = ()  # the loaded export's, in its order

    def compose(self) -> ComposeResult:
        yield Static(
            "Load a source on the Source tab to see its columns.", id="columns-hint", classes="help"
        )
        yield DataTable(id="preview", zebra_stripes=True)
        with Horizontal(id="field-groups"):
            groups = (("Profile fields", "profile", FIELDS), ("Location", "location", LOCATION))
            for title, group, fields in groups:
                with Vertical(id=f"{group}-group", classes="field-group"):
                    yield Label(title, classes="group-title")
                    for field, label in fields:
                        with Horizontal(classes="map-row"):
                            yield Label(label)
                            yield Select[str](
                                [], id=f"map-{field}", prompt="(not sent)", compact=True
                            )
        yield Static(PROPERTIES_RULE, id="properties-rule", classes="field-label")
        yield SelectionList[str](id="properties")

    def load(self, frame: Any, email_guess: str | None, mapping: Mapping | None) -> None:
        """Show the first rows of `frame` and preset the fields (from `mapping`, else guesses)."""
        self.columns = [str(c) for c in frame.columns]
        table = self.query_one("#preview", DataTable)
        table.clear(columns=True)
        table.add_columns(*(Text(column_text(c, 30)) for c in self.columns))
        for row in frame.head(TABLE_ROWS).itertuples(index=False):
            table.add_row(*(cell(v) for v in row))
        shown_rows = min(TABLE_ROWS, len(frame))
        self.query_one("#columns-hint", Static).update(
            Content(f"{len(self.columns)} columns; the first {shown_rows} rows, before the filter.")
        )
        options = [(Content(column_text(c, 40)), c) for c in self.columns]
        current = {**mapping.fields(), **mapping.location} if mapping else {}
        # the same guesses as `klaviyo-tui exports create` (one list, in the service layer)
        guessed = suggest_mapping(self.columns) if mapping is None else {}
        guessed = {k.removeprefix("location."): v for k, v in guessed.items()}
        for field, _ in FIELDS + LOCATION:
            select = self.query_one(f"#map-{field}", Select)
            select.set_options(options)
            value = current.get(field)
            if mapping is None:
                value = email_guess if field == "email" else guessed.get(field)
            if value in self.columns:
                select.value = value
        self._offered = []
        self._saved_properties = mapping.properties if mapping else ()
        self._offer_properties(set(self._saved_properties))

    def _mapped(self) -> dict[str, str]:
        """Field -> column, for every field (profile or location) with a column chosen."""
        out = {}
        for field, _ in FIELDS + LOCATION:
            value = self.query_one(f"#map-{field}", Select).value
            if isinstance(value, str):
                out[field] = value
        return out

    def _offer_properties(self, ticked: set[str] | None = None) -> None:
        """Offer every column not mapped to a field; keep what was ticked."""
        props: SelectionList[str] = self.query_one("#properties", SelectionList)
        keep = set(props.selected) if ticked is None else ticked
        mapped = set(self._mapped().values())
        offered = [c for c in self.columns if c not in mapped]
        if offered != self._offered:
            self._offered = offered
            props.clear_options()
            props.add_options([(Content(column_text(c, 60)), c, c in keep) for c in offered])
        self._show_rule()

    def _both_ways(self) -> list[str]:
        """Columns the loaded export sends as a field and as a custom property too."""
        mapped = set(self._mapped().values())
        return [c for c in self.columns if c in self._saved_properties and c in mapped]

    def _show_rule(self) -> None:
        rule = self.query_one("#properties-rule", Static)
        text = PROPERTIES_RULE
        if self._offered:
            ticked = len(self.query_one("#properties", SelectionList).selected)
            text += f" {ticked} of {len(self._offered)} ticked."
        both = self._both_ways()
        if both:
            names = ", ".join(column_text(c, 30) for c in both)
            text += f" Sent as a field and as a custom property too (as saved): {names}."
        rule.update(Content(text))

    @on(Select.Changed)
    def _field_changed(self) -> None:
        self._offer_properties()
        self.post_message(self.MappingChanged(self.mapping()))

    @on(SelectionList.SelectedChanged, "#properties")
    def _properties_changed(self) -> None:
        self._show_rule()
        self.post_message(self.MappingChanged(self.mapping()))

    def first_focus(self) -> Widget | None:
        """The email field while it is missing; else None (the nav bar's Next)."""
        email = self.query_one("#map-email", Select).value
        return None if isinstance(email, str) else self.query_one("#map-email")

    def mapping(self) -> Mapping | str:
        """The Mapping, or a sentence saying what is missing."""
        values: dict[str, str | None] = {f: None for f, _ in FIELDS + LOCATION}
        values.update(self._mapped())
        email = values.pop("email")
        if not email:
            return "Choose the email column (Columns tab); it is required."
        location = {f: values.pop(f) for f, _ in LOCATION}
        mapped = {email, *(v for v in values.values() if v), *(v for v in location.values() if v)}
        ticked = set(self.query_one("#properties", SelectionList).selected) - mapped
        ticked |= set(self._both_ways())  # an edit keeps what this tab does not show
        kept = [c for c in self._saved_properties if c in ticked]  # in the saved order
        return Mapping(
            email=email,
            location={k: v for k, v in location.items() if v},
            properties=(*kept, *(c for c in self.columns if c in ticked and c not in kept)),
            **values,
        )
