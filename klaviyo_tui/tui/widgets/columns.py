"""The column picker: preview of the first rows, selects mapping profile fields, properties.

The builder sets `frame` (attribute down); the pane reads its widgets back into a `Mapping`.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Collapsible, DataTable, Label, Select, SelectionList, Static

from klaviyo_tui.store.config import Mapping

FIELDS: tuple[tuple[str, str], ...] = (
    ("email", "Email *"),
    ("phone_number", "Phone"),
    ("external_id", "External ID"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
)
LOCATION: tuple[tuple[str, str], ...] = (
    ("city", "City"),
    ("region", "Region/state"),
    ("country", "Country"),
    ("zip", "Postcode"),
    ("address1", "Address"),
)
# Column names (lower-cased, without _ - or spaces) that suggest a profile field.
GUESSES: dict[str, tuple[str, ...]] = {
    "phone_number": ("phone", "phonenumber", "mobile", "tel", "telephone"),
    "external_id": ("externalid", "customerid", "id", "userid", "custid"),
    "first_name": ("firstname", "givenname", "first", "fname"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname"),
    "city": ("city", "town"),
    "region": ("region", "state", "province"),
    "country": ("country", "countrycode"),
    "zip": ("zip", "postcode", "postalcode", "zipcode"),
    "address1": ("address", "address1", "street"),
}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def guess_column(target: str, columns: list[str]) -> str | None:
    wanted = GUESSES.get(target, ())
    for column in columns:
        if _norm(column) in wanted:
            return column
    return None


class ColumnsPane(VerticalScroll):
    """Preview table plus mapping controls. `load()` fills it; `mapping()` reads it back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(can_focus=False, **kwargs)
        self.columns: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(
            "Load a source on the Source tab to see its columns.", id="columns-hint", classes="help"
        )
        yield DataTable(id="preview", zebra_stripes=True)
        for field, label in FIELDS:
            with Horizontal(classes="map-row"):
                yield Label(label)
                yield Select[str]([], id=f"map-{field}", prompt="(not sent)", compact=True)
        with Collapsible(title="Location fields", collapsed=True):
            for field, label in LOCATION:
                with Horizontal(classes="map-row"):
                    yield Label(label)
                    yield Select[str]([], id=f"map-{field}", prompt="(not sent)", compact=True)
        yield Label("Custom properties (sent under their column names):", classes="field-label")
        yield SelectionList[str](id="properties")

    def load(self, frame: Any, email_guess: str | None, mapping: Mapping | None) -> None:
        """Show the first rows of `frame` and preset the selects (from `mapping` or guesses)."""
        self.columns = [str(c) for c in frame.columns]
        table = self.query_one("#preview", DataTable)
        table.clear(columns=True)
        table.add_columns(*self.columns)
        for row in frame.head(20).itertuples(index=False):
            table.add_row(*("" if _isna(v) else str(v)[:30] for v in row))
        self.query_one("#columns-hint", Static).update(
            f"{len(self.columns)} columns; the first {min(20, len(frame))} rows are shown."
        )
        options = [(c, c) for c in self.columns]
        current = mapping.fields() if mapping else {}
        location = mapping.location if mapping else {}
        for field, _ in FIELDS + LOCATION:
            select = self.query_one(f"#map-{field}", Select)
            select.set_options(options)
            value = current.get(field) or location.get(field)
            if mapping is None:
                value = email_guess if field == "email" else guess_column(field, self.columns)
            if value in self.columns:
                select.value = value
        chosen = set(mapping.properties) if mapping else set()
        props = self.query_one("#properties", SelectionList)
        props.clear_options()
        props.add_options([(c, c, c in chosen) for c in self.columns])

    def mapping(self) -> Mapping | str:
        """The Mapping, or a sentence saying what is missing."""
        values: dict[str, str | None] = {}
        for field, _ in FIELDS + LOCATION:
            value = self.query_one(f"#map-{field}", Select).value
            values[field] = value if isinstance(value, str) else None
        email = values.pop("email")
        if not email:
            return "Choose the email column (Columns tab); it is required."
        location = {f: values.pop(f) for f, _ in LOCATION}
        props = tuple(self.query_one("#properties", SelectionList).selected)
        return Mapping(
            email=email,
            location={k: v for k, v in location.items() if v},
            properties=props,
            **{k: v for k, v in values.items()},
        )


def _isna(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN / NA
    except (TypeError, ValueError):
        return False
