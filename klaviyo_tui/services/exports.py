"""Exports and their segments in the config: save, remove (with the pruning rule), look up."""

from __future__ import annotations

from pathlib import Path

from klaviyo_tui.store.config import Config, ConfigError, Export, Segment
from klaviyo_tui.store.config_store import ConfigStore


def export_named(config: Config, name: str) -> Export:
    """The export called `name`, or a ConfigError naming the ones that exist."""
    export = config.exports.get(name)
    if export is None:
        known = ", ".join(sorted(config.exports)) or "none yet"
        raise ConfigError(
            f"there is no export named {name!r} (exports: {known})",
            hint="Create one with `klaviyo-tui exports create NAME` or in the app (n).",
        )
    return export


def save_export(config_path: Path, export: Export, segments: list[Segment]) -> Config:
    """Add or replace the export and the segments it reads. Blocks (file): use a thread."""
    store = ConfigStore(config_path)
    for segment in segments:
        store.put_segment(segment)
    store.put_export(export)
    store.save()
    return store.config


def remove_export(config_path: Path, name: str) -> list[str]:
    """Remove the export and the segments no other export uses; returns those segments' names.

    History is kept. Blocks (file): use a thread.
    """
    store = ConfigStore(config_path)
    export = export_named(store.config, name)
    store.remove_export(name)
    pruned = []
    for segment in export.segments:
        users = [e for e in store.config.exports.values() if segment in e.segments]
        if not users and segment in store.config.segments:
            store.remove_segment(segment)
            pruned.append(segment)
    store.save()
    return pruned
