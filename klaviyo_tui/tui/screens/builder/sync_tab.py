"""The Sync tab: how runs treat rows sent before, customers who left, consent, and read-backs.

Four choices, each with what it costs or means in one line: incremental (new exports start with
it), upsert or mirror (with the removal limits that stop a run before it empties a list),
subscribe with consent (the exact text of `subscribe_consent_text`, and an explicit tick that
`assert_subscribe` records with the time and OS user) and verification (off, full, a sample,
with its time at Klaviyo's limits). `settings()` and `verify()` read it back through the same
service the CLI uses (`services.export_sync.new_sync`).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Input, Label, RadioSet, Select, Static

from klaviyo_tui.errors import AppError
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.store.config import Export
from klaviyo_tui.store.consent import subscribe_consent_text
from klaviyo_tui.store.sync_config import Subscribe, SyncSettings
from klaviyo_tui.tui.screens.builder.fields import column_text
from klaviyo_tui.tui.sync_text import removal_limit, verify_cost
from klaviyo_tui.tui.widgets.toggles import Checkbox, RadioButton

INCREMENTAL_LABEL = "Incremental: send only new or changed rows"
INCREMENTAL_HELP = "Rows an earlier run confirmed, unchanged, are skipped (counted unchanged)."
UPSERT_LABEL = "Upsert: add and update; never remove anyone"
MIRROR_LABEL = "Mirror: also remove customers who left the segment"
MIRROR_HELP = (
    "The list follows the segment. Only customers this tool added are ever removed, and their "
    "consent stays as it is."
)
CHANNELS = [("Off", "off"), ("Email", "email"), ("SMS", "sms"), ("Email and SMS", "both")]
VERIFY_MODES = [("Off", "off"), ("Full: every member", "full"), ("A sample of rows", "sample")]
HISTORICAL_LABEL = "Historical: consent given earlier (no opt-in mail)"
ASSERT_LABEL = "I assert this consent, as written above"
DEFAULT_SAMPLE = "500"


def percent(ratio: float) -> str:
    """0.1 -> "10": the removal ratio as people type it."""
    return f"{ratio * 100:g}"


def _what(sub: Subscribe) -> tuple[str, str | None, bool]:
    """What a subscription asserts: a change to any of it needs a new assertion."""
    return sub.channel, sub.consented_at_column, sub.historical


class SyncTab(VerticalScroll):
    """Incremental, mode and limits, subscribe and consent, verification."""

    def __init__(self, existing: Export | None, *, id: str | None = None) -> None:
        super().__init__(can_focus=False, id=id)
        self.existing = existing
        # new exports are incremental (services.exports.ExportSpec does the same)
        self.initial = existing.sync if existing else SyncSettings(incremental=True)
        sub = self.initial.subscribe
        self.kept = sub if sub is not None and sub.asserted else None  # an assertion still valid
        self.column = sub.consented_at_column if sub else None  # until the columns are known
        self.columns: list[str] = []
        self.rows: int | None = None  # the export's rows (those the filter keeps), once counted
        self.phone_mapped = True
        self._asserting: tuple[str, str | None, bool] | None = None  # what the tick is about

    def compose(self) -> ComposeResult:
        s = self.initial
        sub = s.subscribe
        yield Checkbox(INCREMENTAL_LABEL, s.incremental, id="incremental")
        yield Static(INCREMENTAL_HELP, classes="help")
        yield Label("When a customer leaves the segment", classes="field-label")
        with RadioSet(id="mode"):
            yield RadioButton(UPSERT_LABEL, value=not s.mirror, id="mode-upsert")
            yield RadioButton(MIRROR_LABEL, value=s.mirror, id="mode-mirror")
        with Vertical(id="limits"):
            yield Static(MIRROR_HELP, classes="help")
            with Horizontal(classes="row"):
                yield Label("Most a run may remove", classes="row-label")
                yield Input(percent(s.max_removal_ratio), id="max-ratio", compact=True)
                yield Label("% of the list")
            with Horizontal(classes="row"):
                yield Label("…and at most", classes="row-label")
                most = "" if s.max_removals is None else str(s.max_removals)
                yield Input(most, id="max-removals", compact=True)
                yield Label("profiles (empty: any)")
            yield Static("", id="limits-status", classes="help")
        yield Label("Subscribe to marketing, with consent", classes="field-label")
        with Horizontal(classes="row"):
            yield Label("Channel", classes="row-label")
            channel = sub.channel if sub else "off"
            yield Select(CHANNELS, value=channel, allow_blank=False, id="subscribe", compact=True)
        with Vertical(id="consent"):
            with Horizontal(classes="row"):
                yield Label("Consent time column", classes="row-label")
                none = "(none: consent given now)"
                yield Select[str]([], prompt=none, id="consent-column", compact=True)
            yield Checkbox(HISTORICAL_LABEL, bool(sub and sub.historical), id="historical")
            yield Static("", id="consent-text")
            yield Checkbox(ASSERT_LABEL, self.kept is not None, id="assert")
            yield Static("", id="assert-status", classes="help")
            yield Static("", id="subscribe-problem", classes="error-text")
        yield Label("Verify after each run: read the list back", classes="field-label")
        kind, _, size = (self.existing.verify if self.existing else "off").partition(":")
        with Horizontal(classes="row"):
            yield Label("Verification", classes="row-label")
            yield Select(VERIFY_MODES, value=kind, allow_blank=False, id="verify", compact=True)
            yield Label("rows", id="sample-label")
            yield Input(size or DEFAULT_SAMPLE, id="sample-size", compact=True)
        yield Static("", id="verify-cost", classes="help")

    def on_mount(self) -> None:
        self._show_mode()
        self._show_subscribe()
        self._show_verify()

    def first_focus(self) -> Widget:
        return self.query_one("#incremental")

    # ---- fed by the screen -----------------------------------------------------------------------
    def set_columns(self, columns: list[str]) -> None:
        """The loaded source's columns: the consent time column is one of them."""
        self.columns = columns
        select = self.query_one("#consent-column", Select)
        current = select.value if isinstance(select.value, str) else self.column
        select.set_options([(Content(column_text(c, 40)), c) for c in columns])
        if current in columns:
            select.value = current
        self._show_subscribe()

    def set_rows(self, rows: int | None) -> None:
        """How many rows the export sends (the filter's count): the costs are worded with it."""
        self.rows = rows
        self._show_mode()
        self._show_verify()

    def set_phone_mapped(self, mapped: bool) -> None:
        self.phone_mapped = mapped
        self._show_subscribe()

    # ---- read back -------------------------------------------------------------------------------
    def mirror(self) -> bool:
        return self.query_one("#mode-mirror", RadioButton).value

    def channel(self) -> str:
        value = self.query_one("#subscribe", Select).value
        return value if isinstance(value, str) else "off"

    def consent_column(self) -> str | None:
        value = self.query_one("#consent-column", Select).value
        if isinstance(value, str):
            return value
        return None if self.columns else self.column  # not loaded yet: the saved one stands

    def subscribe(self) -> Subscribe | None:
        """What the form asks to subscribe, without an assertion (None: off)."""
        channel = self.channel()
        if channel == "off":
            return None
        historical = self.query_one("#historical", Checkbox).value
        return Subscribe(channel, self.consent_column(), historical)

    def _ratio(self) -> float | str:
        text = self.query_one("#max-ratio", Input).value.strip()
        if text == percent(self.initial.max_removal_ratio):
            return self.initial.max_removal_ratio  # unchanged: exactly as saved
        try:
            value = float(text or "nan")
        except ValueError:
            value = float("nan")
        if not 0 <= value <= 100:
            return "Sync tab: the most a run may remove must be a number from 0 to 100 (%)."
        return value / 100

    def _most(self) -> int | None | str:
        text = self.query_one("#max-removals", Input).value.strip().replace(",", "")
        if not text:
            return None
        if not text.isdigit():
            return "Sync tab: the most profiles a run may remove must be a whole number, or empty."
        return int(text)

    def settings(self) -> SyncSettings | str:
        """The settings to save, or what is missing (with where to fix it)."""
        from klaviyo_tui.services.export_sync import new_sync

        ratio, most = self._ratio(), self._most()
        if isinstance(ratio, str):
            return ratio
        if isinstance(most, str):
            return most
        sub, asserted = self.subscribe(), False
        if sub is not None:
            ticked = self.query_one("#assert", Checkbox).value
            if ticked and self.kept is not None and _what(self.kept) == _what(sub):
                sub = self.kept  # asserted before, for exactly this: keep who and when
            elif ticked:
                asserted = True  # new_sync records who and when (store.consent)
            else:
                return (
                    "Sync tab: subscribing needs your assertion that these customers consented: "
                    "read the text and tick “I assert this consent”, or set Channel to Off."
                )
        try:
            return new_sync(
                mode="mirror" if self.mirror() else "upsert",
                incremental=self.query_one("#incremental", Checkbox).value,
                subscribe=sub,
                max_removal_ratio=ratio,
                max_removals=most,
                consent_asserted=asserted,
            )
        except AppError as error:
            return f"Sync tab: {error.message}"

    def verify(self) -> str:
        """`off`, `full` or `sample:N` (the config's `verify`); may be invalid: see problems."""
        kind = self.query_one("#verify", Select).value
        if kind == "sample":
            return f"sample:{self.query_one('#sample-size', Input).value.strip()}"
        return kind if isinstance(kind, str) else "off"

    def verify_problem(self) -> str | None:
        from klaviyo_tui.run.options import parse_verify

        try:
            parse_verify(self.verify())
        except AppError:
            return "Sync tab: the sample needs a whole number of rows, 1 or more."
        return None

    # ---- what each choice means ----------------------------------------------------------------
    @on(RadioSet.Changed, "#mode")
    @on(Input.Changed, "#max-ratio,#max-removals")
    def _show_mode(self) -> None:
        mirror = self.mirror()
        self.query_one("#limits").display = mirror
        status = self.query_one("#limits-status", Static)
        ratio, most = self._ratio(), self._most()
        problem = ratio if isinstance(ratio, str) else most if isinstance(most, str) else None
        status.set_class(problem is not None, "error-text")
        if problem is not None:
            status.update(Content(problem.removeprefix("Sync tab: ")))
        elif not isinstance(ratio, str) and not isinstance(most, str):
            status.update(Content(removal_limit(ratio, most, self.rows)))

    @on(Select.Changed, "#subscribe,#consent-column")
    @on(Checkbox.Changed, "#historical")
    def _show_subscribe(self) -> None:
        sub = self.subscribe()
        self.query_one("#consent").display = sub is not None
        if sub is None:
            return
        text = subscribe_consent_text(sub.channel, sub.historical, sub.consented_at_column)
        self.query_one("#consent-text", Static).update(Content(safe_text(text, keep_layout=True)))
        kept = self.kept
        if _what(sub) != self._asserting:  # what is asserted changed: it is asserted again
            self._asserting = _what(sub)
            again = kept is not None and _what(kept) == _what(sub)
            self.query_one("#assert", Checkbox).value = again
            status = "Recorded in the config with the time (UTC) and your OS user name."
            if kept is not None and again:
                by = safe_text(kept.asserted_by or "unknown")
                status = f"Asserted by {by} at {safe_text(kept.asserted_at or '')} (UTC)."
            self.query_one("#assert-status", Static).update(Content(status))
        problem = ""
        if sub.sms and not self.phone_mapped:
            problem = "SMS consent is given to a phone number: map a Phone column (Columns tab)."
        elif sub.historical and not sub.consented_at_column:
            problem = "Historical needs the consent time column: pick the column that holds it."
        shown = self.query_one("#subscribe-problem", Static)
        shown.update(Content(problem))
        shown.display = bool(problem)

    @on(Select.Changed, "#verify")
    @on(Input.Changed, "#sample-size")
    def _show_verify(self) -> None:
        sample = self.query_one("#verify", Select).value == "sample"
        self.query_one("#sample-label").display = sample
        self.query_one("#sample-size").display = sample
        cost = self.query_one("#verify-cost", Static)
        problem = self.verify_problem()
        cost.set_class(problem is not None, "error-text")
        if problem:
            cost.update(Content(problem.removeprefix("Sync tab: ")))
        else:
            cost.update(Content(verify_cost(self.verify(), self.rows)))
