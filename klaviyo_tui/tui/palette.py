"""Command palette entries for one export: every action its screens offer, by name."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp


def export_commands(app: KlaviyoApp, name: str) -> Iterable[SystemCommand]:
    """Run/show/cancel, edit, history, last run, resume, retry and remove for `name`."""
    handle = app.runs.get(name)
    if handle is not None and handle.active:
        yield SystemCommand(f"Show run {name}", "The live view", partial(app.start_run, name))
        cancel = partial(app.cancel_run, name)
        yield SystemCommand(f"Cancel run {name}", "Stop it (resumable)", cancel)
    else:
        yield SystemCommand(f"Run {name}", "Start this export now", partial(app.start_run, name))
    yield SystemCommand(f"Edit {name}", "Change this export", partial(app.edit_export, name))
    yield SystemCommand(f"History of {name}", "Its past runs", partial(app.action_history, name))
    last = app.last_runs.get(name)
    if last is not None:
        detail = partial(app.show_run_detail, last.id)
        yield SystemCommand(f"Last run of {name}", "Counts, reasons, rejects CSV", detail)
        if last.status == "interrupted":
            resume = partial(app.start_run, name, resume=True)
            yield SystemCommand(f"Resume {name}", "Continue where it stopped", resume)
        if last.counts.get("rejected_by_klaviyo", 0):
            retry = partial(app.start_run, name, retry_failed_of=last.id)
            yield SystemCommand(f"Retry failed rows of {name}", "Send them again", retry)
    remove = partial(app.remove_export, name)
    yield SystemCommand(f"Remove export {name}", "Its history is kept", remove)
