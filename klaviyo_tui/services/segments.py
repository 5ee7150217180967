"""Segments (a source plus an optional filter): look up, inspect, create and remove.

Creating checks what a run would trip over later (the source can be read, the filter is valid,
by counting the matching rows), so a saved segment is one that reads. Removing refuses while an
export reads the segment. Functions that read sources or the config block: use a thread.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.store.config import Config, ConfigError, Segment
from klaviyo_tui.store.config_store import ConfigStore

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SegmentInUse(AppError):
    """The segment cannot be removed: exports read it."""

    title = "The segment is in use"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class SegmentUse:
    segment: Segment
    exports: tuple[str, ...]  # the exports that read it, sorted


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the first rows of a source say: its columns and the column that holds emails."""

    columns: list[str]
    email_guess: str | None


def slug(text: str, fallback: str = "name") -> str:
    """A name made of letters, digits and dashes, to suggest when a typed one is not usable;
    accents are dropped rather than the letters (`Ünï Clients` -> `uni-clients`)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or fallback


def check_name(name: str, kind: str) -> str:
    """`name` when it can be typed in commands and config tables; else a ConfigError."""
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"{kind} name {name!r} is not usable: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit",
            hint=f"For example {slug(name)!r}.",
        )
    return name


def segment_named(config: Config, name: str) -> Segment:
    """The segment called `name`, or a ConfigError naming the ones that exist."""
    segment = config.segments.get(name)
    if segment is None:
        known = ", ".join(sorted(config.segments)) or "none yet"
        raise ConfigError(
            f"there is no segment named {name!r} (segments: {known})",
            hint="Create one with `klaviyo-tui segments create NAME --source PATH`.",
        )
    return segment


def users_of(config: Config, name: str) -> tuple[str, ...]:
    """The exports that read segment `name`, sorted."""
    return tuple(sorted(e.name for e in config.exports.values() if name in e.segments))


def segment_uses(config: Config) -> list[SegmentUse]:
    """Every segment with the exports that read it, sorted by name."""
    return [SegmentUse(config.segments[n], users_of(config, n)) for n in sorted(config.segments)]


def make_segment(
    name: str, source: str, *, query: str | None = None, filter_text: str | None = None
) -> Segment:
    """A segment from what a person typed: a file path is made absolute (cron runs elsewhere),
    a database URL is kept as given; empty query and filter mean none."""
    source = source.strip()
    if not source:
        raise ConfigError("the source is empty", hint="Give a file path or a database URL.")
    query = (query or "").strip() or None
    if query is None:
        source = str(Path(source).expanduser().resolve())
    elif "://" not in source:
        source = str(Path(source).expanduser().resolve())  # a sqlite file with a query
    return Segment(name, source, query=query, filter=(filter_text or "").strip() or None)


def inspect_source(segment: Segment, rows: int = 500) -> SourceInfo:
    """Read the first rows: the columns and the email column the builder would pick.

    SourceError (with what to do) when the source cannot be read. Blocks: use a thread."""
    from klaviyo_tui.input.preview import detect_email_column
    from klaviyo_tui.input.sources import preview

    frame = preview(segment, n=rows)
    return SourceInfo([str(c) for c in frame.columns], detect_email_column(frame))


def count_rows(segment: Segment) -> int:
    """Rows of the segment that pass its filter; FilterError says what is wrong with a filter.

    Reads the whole source (only the filter's columns). Blocks: use a thread."""
    from klaviyo_tui.input.filters import count_matching

    return count_matching(segment)


def create_segment(config_path: Path, segment: Segment) -> int:
    """Check the name, the source and the filter, then save; returns the matching rows.

    Blocks (source, file): use a thread."""
    check_name(segment.name, "segment")
    store = ConfigStore(config_path)
    if segment.name in store.config.segments:
        raise ConfigError(
            f"a segment named {segment.name!r} exists already",
            hint="Choose another name, or remove it first with `klaviyo-tui segments remove`.",
        )
    inspect_source(segment, rows=1)
    rows = count_rows(segment)
    store.put_segment(segment)
    store.save()
    return rows


def remove_segment(config_path: Path, name: str) -> None:
    """Remove the segment; SegmentInUse names the exports that still read it.

    Blocks (file): use a thread."""
    store = ConfigStore(config_path)
    segment_named(store.config, name)
    users = users_of(store.config, name)
    if users:
        raise SegmentInUse(
            f"segment {name!r} is read by {'export' if len(users) == 1 else 'exports'} "
            f"{', '.join(users)}; it was not removed",
            hint=(
                "Remove those exports first (`klaviyo-tui exports remove NAME`), or point them "
                "at other segments (`klaviyo-tui exports edit NAME --set segments=A,B`)."
            ),
        )
    store.remove_segment(name)
    store.save()


def shown_source(segment: Segment) -> str:
    """The source for messages and listings: a database URL with its password masked."""
    if not segment.query or "://" not in segment.source:
        return segment.source
    try:
        import sqlalchemy as sa

        return sa.make_url(segment.source).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: show only its scheme
        return segment.source.split("://", 1)[0] + "://…"
