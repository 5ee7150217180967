"""What must hold before an export can run at all (checked before any request or record)."""

from __future__ import annotations

from klaviyo_tui.errors import RunError
from klaviyo_tui.store.config import Config, Export


def check_runnable(export: Export, config: Config) -> None:
    """Refuse early, with what to do, when the config cannot run this export."""
    connection = config.connections.get(export.connection)
    if connection is None:
        raise RunError(
            f"export {export.name!r} uses connection {export.connection!r}, which does not exist "
            "(it was removed, or never added)",
            hint=(
                f"Edit the export (e on Home, or `klaviyo-tui exports edit {export.name} "
                "--set connection=NAME`) and pick a connection, or add one named "
                f"{export.connection!r} with `klaviyo-tui connections add {export.connection}`."
            ),
        )
    if not connection.has_consent:
        raise RunError(
            f"connection {connection.name!r} has no recorded data-privacy consent",
            hint=(
                "Accept it by editing the connection in the app, or with "
                f"`klaviyo-tui connections add {connection.name}`, before exporting."
            ),
        )
    missing = [name for name in export.segments if name not in config.segments]
    if missing:
        raise RunError(
            f"export {export.name!r} names segment(s) {', '.join(map(repr, missing))} that do not "
            "exist in the config",
            hint="Add the [segments.NAME] tables, or edit the export's segments list.",
        )
    if not export.segments:
        raise RunError(
            f"export {export.name!r} has no segments",
            hint='Add segments = ["NAME"] to the export, or rebuild it in the app.',
        )
    subscribe = export.sync.subscribe
    if subscribe is not None and not subscribe.asserted:  # a hand edit can drop it
        raise RunError(
            f"export {export.name!r} subscribes customers to marketing, but the config records no "
            "assertion that they consented (subscribe.asserted_at is missing)",
            hint=(
                f"`klaviyo-tui exports edit {export.name} --set subscribe={subscribe.channel}` "
                "shows the consent text and records your assertion (add --assert-consent in a "
                "script), as the app's Sync tab does; or stop subscribing with "
                f"`klaviyo-tui exports edit {export.name} --set subscribe=off`."
            ),
        )
