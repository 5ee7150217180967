"""Command palette entries: the app's own commands and every action of each export, by name.

Titles carry export and connection names; the palette reads titles as markup, so they are
escaped (and made safe: keys masked, control characters visible).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from klaviyo_tui.tui.text import escaped

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp


def app_commands(app: KlaviyoApp) -> Iterable[SystemCommand]:
    """New connection/export, history, help, then each export's and connection's commands."""
    yield SystemCommand("New connection", "Add a Klaviyo account", app.connection_wizard)
    yield SystemCommand("New export", "Build an export to a list", partial(app.edit_export, None))
    yield SystemCommand("History", "Past runs, rejects, retry and resume", app.action_history)
    yield SystemCommand("Help", "Keys and how the app works", app.action_help)
    for name in sorted(app.config.exports):
        yield from export_commands(app, name)
    for key, conn in sorted(app.config.connections.items()):
        label = escaped(conn.display_name)
        edit = partial(app.connection_wizard, conn)
        yield SystemCommand(f"Edit connection {label}", "Rename, change key or URL", edit)
        remove = partial(app.remove_connection, key)
        yield SystemCommand(f"Remove connection {label}", "And delete its key", remove)


def export_commands(app: KlaviyoApp, name: str) -> Iterable[SystemCommand]:
    """Run/show/cancel, edit, history, last run, resume, retry and remove for `name`."""
    shown = escaped(name)
    handle = app.runs.get(name)
    if handle is not None and handle.active:
        yield SystemCommand(f"Show run {shown}", "The live view", partial(app.start_run, name))
        cancel = partial(app.cancel_run, name)
        yield SystemCommand(f"Cancel run {shown}", "Stop it (resumable)", cancel)
    else:
        yield SystemCommand(f"Run {shown}", "Start this export now", partial(app.start_run, name))
        dry = partial(app.start_run, name, dry_run=True)
        yield SystemCommand(f"Dry run {shown}", "What a run would do; sends nothing", dry)
    yield SystemCommand(f"Edit {shown}", "Change this export", partial(app.edit_export, name))
    history = partial(app.action_history, name)
    yield SystemCommand(f"History of {shown}", "Its past runs", history)
    last = app.last_runs.get(name)
    if last is not None:
        detail = partial(app.show_run_detail, last.id)
        yield SystemCommand(f"Last run of {shown}", "Counts, reasons, rejects CSV", detail)
        if last.status == "interrupted":
            resume = partial(app.start_run, name, resume=True)
            yield SystemCommand(f"Resume {shown}", "Continue where it stopped", resume)
        if last.counts.get("rejected_by_klaviyo", 0):
            retry = partial(app.start_run, name, retry_failed_of=last.id)
            yield SystemCommand(f"Retry failed rows of {shown}", "Send them again", retry)
    remove = partial(app.remove_export, name)
    yield SystemCommand(f"Remove export {shown}", "Its history is kept", remove)
