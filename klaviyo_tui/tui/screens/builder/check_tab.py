"""The Check & save tab: the first matching rows validated, what will be sent, and the options.

The check runs on the rows the export will really read (the first 500 that match the filter,
`preview_matching`) and says so. What happens to a bad phone or an over-long external_id is a
choice saved with the export (`on_invalid_field`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Label, RadioSet, Static

from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.builder.fields import CONTROL_PICTURES
from klaviyo_tui.tui.screens.builder.report import (
    DROP_FIELD,
    PREVIEW_ROWS,
    REJECT_ROW,
    CheckOutcome,
    render_report,
    render_summary,
)
from klaviyo_tui.tui.widgets.toggles import RadioButton

SAVE_NOTE = (
    "Save keeps the export for later (run it from Home with [b]r[/b], or headless with "
    "[b]klaviyo-tui run NAME[/b]); [b]Save and run[/b] starts it now."
)
DROP_LABEL = "Drop the bad field: the customer is still imported, with a warning"
REJECT_LABEL = "Reject the row: the customer is not imported (listed in the rejects)"


class CheckTab(VerticalScroll):
    """Check report, send summary, on-invalid choice, region, schedule, save note."""

    class CheckRequested(Message):
        """The user asked for a new check (button, or Enter in the region)."""

    def __init__(self, existing: Export | None, *, id: str | None = None) -> None:
        super().__init__(can_focus=False, id=id)
        self.existing = existing
        self.outcome: CheckOutcome | None = None
        self._inputs: tuple[object, ...] | None = None  # what the outcome (or its worker) checks
        self._matching: int | None = None

    def compose(self) -> ComposeResult:
        e = self.existing
        choice = getattr(e, "on_invalid_field", DROP_FIELD) if e else DROP_FIELD
        yield Static("Load a source first (Source tab).", id="checks")
        yield Static("", id="send-summary")
        yield Label("A bad phone, or an external_id over 255 characters:", classes="field-label")
        with RadioSet(id="on-invalid"):
            yield RadioButton(DROP_LABEL, value=choice != REJECT_ROW, id="invalid-drop")
            yield RadioButton(REJECT_LABEL, value=choice == REJECT_ROW, id="invalid-reject")
        yield Label("Default phone region (for numbers without +country)", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(
                e.default_region if e else "US",
                id="region",
                placeholder="Default phone region, e.g. US",
                compact=True,
                highlighter=CONTROL_PICTURES,
            )
            yield Button("Check rows", id="check", compact=True)
        yield Label("Schedule (optional, cron, local time)", classes="field-label")
        yield Input(
            e.schedule or "" if e else "",
            placeholder="e.g. 0 6 * * 1-5",
            id="schedule",
            compact=True,
            highlighter=CONTROL_PICTURES,
        )
        yield Static("Empty: runs only when you start it.", id="schedule-status", classes="help")
        yield Static(SAVE_NOTE, classes="help")
        yield Static("", id="save-error", classes="error-text")

    # ---- read back -------------------------------------------------------------------------------
    def on_invalid(self) -> str:
        return REJECT_ROW if self.query_one("#invalid-reject", RadioButton).value else DROP_FIELD

    def default_region(self) -> str:
        return self.query_one("#region", Input).value.strip().upper() or "US"

    def schedule(self) -> str | None:
        return self.query_one("#schedule", Input).value.strip() or None

    def show_save_error(self, text: str) -> None:
        self.query_one("#save-error", Static).update(Content(text))

    # ---- the check -------------------------------------------------------------------------------
    def forget(self) -> None:
        """The source was (re)loaded: its rows may have changed, so the next check runs again."""
        self._inputs = None

    def run_check(
        self,
        source: Segment | str,
        mapping: Mapping | str,
        matching: int | None,
        columns: list[str],
        *,
        force: bool = False,
    ) -> None:
        """Validate the first matching rows (thread); `source`/`mapping` may say what is missing.

        The same inputs are not checked twice unless `force`d (Check rows): a new count of the
        matching rows only changes the wording.
        """
        self._matching = matching
        self.query_one("#send-summary", Static).update(render_summary(mapping, columns))
        checks = self.query_one("#checks", Static)
        if isinstance(source, str) or isinstance(mapping, str):
            self.outcome = self._inputs = None
            checks.set_class(False, "error-text")
            checks.update(Content(source if isinstance(source, str) else str(mapping)))
            return
        inputs = (source, mapping, self.default_region())
        if inputs == self._inputs and not force:
            self._show_outcome()
            return
        self.outcome, self._inputs = None, inputs
        checks.set_class(False, "error-text")
        checks.update(Content(f"Checking the first {PREVIEW_ROWS} matching rows…"))
        self._validate(source, mapping, self.default_region())

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def _validate(self, segment: Segment, mapping: Mapping, region: str) -> None:
        from klaviyo_tui.input.filters import preview_matching
        from klaviyo_tui.input.preview import validation_preview

        try:
            frame = preview_matching(segment, PREVIEW_ROWS)
            # the two field policies side by side: the choice below changes what the user reads
            full = validation_preview(frame, mapping, region, on_invalid_field="reject_row")
            kept = validation_preview(frame, mapping, region, on_invalid_field="drop_field")
            outcome = CheckOutcome(len(frame), segment.filter, None, full, kept)
        except Exception as exc:
            info = describe_error(exc)
            text = Content.assemble((info.title, "bold"), ": ", info.as_text())
            self.app.call_from_thread(self._failed, text)
            return
        self.app.call_from_thread(self._checked, outcome)

    def _failed(self, text: Content) -> None:
        self.outcome = None
        checks = self.query_one("#checks", Static)
        checks.update(text)
        checks.add_class("error-text")

    def _checked(self, outcome: CheckOutcome) -> None:
        self.outcome = outcome
        self._show_outcome()

    @on(RadioSet.Changed, "#on-invalid")
    def _show_outcome(self) -> None:
        if self.outcome is not None:
            outcome = dataclasses.replace(self.outcome, matching=self._matching)
            self.query_one("#checks", Static).update(render_report(outcome, self.on_invalid()))

    @on(Button.Pressed, "#check")
    @on(Input.Submitted, "#region")
    def _check_pressed(self) -> None:
        self.post_message(self.CheckRequested())

    @on(Input.Changed, "#schedule")
    def _schedule_changed(self, event: Input.Changed) -> None:
        from klaviyo_tui.run.schedule import next_run, validate_schedule

        status = self.query_one("#schedule-status", Static)
        text = event.value.strip()
        problem = validate_schedule(text) if text else None
        status.set_class(bool(problem), "error-text")
        if not text:
            status.update("Empty: runs only when you start it.")
        elif problem:
            status.update(Content(problem))
        else:
            status.update(
                Content(
                    f"Next run: {next_run(text, datetime.now()):%Y-%m-%d %H:%M} "
                    "(needs `klaviyo-tui run --due` in cron)"
                )
            )
