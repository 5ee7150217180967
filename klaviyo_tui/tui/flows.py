"""Small multi-step flows started from Home and the palette: ask, then remove.

Each is a coroutine run as an exclusive App worker, so a second request replaces a pending one
instead of stacking dialogs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klaviyo_tui.redaction import safe_text
from klaviyo_tui.tui.screens.dialogs import ConfirmModal

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp


async def remove_export(app: KlaviyoApp, name: str) -> None:
    """Ask, then remove the export (and its segments no other export uses)."""
    from klaviyo_tui.services import exports

    if name not in app.config.exports:
        return
    shown = safe_text(name)
    question = f"Remove the export “{shown}”? Its run history is kept."
    if not await app.push_screen_wait(ConfirmModal("Remove export?", question)):
        return
    await app.in_thread(exports.remove_export, app.config_path, name)
    await app.reload_config()
    app.notify(f"Removed export “{shown}”.")


async def remove_connection(app: KlaviyoApp, name: str) -> None:
    """Ask, then remove the connection and delete its key from the keyring."""
    from klaviyo_tui.services import connections

    conn = app.config.connections.get(name)
    if conn is None:
        return
    shown = safe_text(conn.display_name)
    users = [safe_text(e.name) for e in app.config.exports.values() if e.connection == name]
    extra = f"\nExports that use it will not run: {', '.join(users)}." if users else ""
    question = (
        f"Remove the connection “{shown}” and delete its API key from the keyring? Data "
        f"already in Klaviyo stays there.{extra}"
    )
    if not await app.push_screen_wait(ConfirmModal("Remove connection?", question)):
        return
    await app.in_thread(connections.remove_connection, app.config_path, name)
    await app.reload_config()
    app.notify(f"Removed “{shown}” and its key.")
