"""Shapes shared by several commands: config objects as JSON for scripts, `key=value` pairs.

The JSON shapes hold the exact values (a column called `first\nname` is that string): `emit_json`
makes them terminal-safe by escaping, so they never go through `safe_text`."""

from __future__ import annotations

import click

from klaviyo_tui.services.segments import SegmentUse, shown_source
from klaviyo_tui.store.config import Config, Export, Segment


def parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    """`key=value` pairs (the last of a repeated key wins); a UsageError names a bad one.

    The key is trimmed; the value is kept exactly as given, since it may be a column name (spaces
    and all: the file's header decides). Services trim the values that are no column names."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"{option} {pair!r}: write it as key=value")
        out[key.strip()] = value
    return out


def mapping_json(export: Export) -> dict[str, str]:
    """Field -> column, location fields as `location.city`."""
    out = dict(export.mapping.fields())
    out.update({f"location.{k}": v for k, v in export.mapping.location.items()})
    return out


def segment_json(name: str, segment: Segment | None) -> dict[str, object]:
    """A segment's source (password masked), query and filter; None values when it is missing."""
    return {
        "name": name,
        "source": shown_source(segment) if segment else None,
        "query": segment.query if segment and segment.query else None,
        "filter": segment.filter if segment and segment.filter else None,
    }


def segment_use_json(use: SegmentUse) -> dict[str, object]:
    return {**segment_json(use.segment.name, use.segment), "exports": list(use.exports)}


def export_json(export: Export, config: Config) -> dict[str, object]:
    """One export for scripts: everything `exports show` prints."""
    return {
        "name": export.name,
        "connection": export.connection,
        "list_id": export.list_id,
        "list_name": export.list_name or None,
        "segments": [segment_json(n, config.segments.get(n)) for n in export.segments],
        "mapping": mapping_json(export),
        "properties": list(export.mapping.properties),
        "default_region": export.default_region,
        "schedule": export.schedule,
        "sync": sync_json(export),
    }


def sync_json(export: Export) -> dict[str, object]:
    """The export's sync settings (mode, incremental, removal limits, subscribe)."""
    sync = export.sync
    sub = sync.subscribe
    return {
        "mode": sync.mode,
        "incremental": sync.incremental,
        "max_removal_ratio": sync.max_removal_ratio,
        "max_removals": sync.max_removals,
        "subscribe": None
        if sub is None
        else {
            "channel": sub.channel,
            "consented_at_column": sub.consented_at_column or None,
            "historical": sub.historical,
            "asserted_at": sub.asserted_at,
            "asserted_by": sub.asserted_by or None,
        },
    }
