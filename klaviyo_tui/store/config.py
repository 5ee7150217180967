"""The configuration's typed, frozen views: connections, segments, exports and their mappings.

These are what the rest of the code works with. Reading and validating the TOML file into them is
`config_read` (`load_config`); editing the file in place is `config_store` (`ConfigStore`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.store.sync_config import SyncSettings

DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_REVISION = "2026-07-15"

# Klaviyo profile fields a column can be mapped to (besides `properties`).
PROFILE_FIELDS: tuple[str, ...] = (
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "title",
    "locale",
)
LOCATION_FIELDS: tuple[str, ...] = (
    "address1",
    "address2",
    "city",
    "country",
    "region",
    "zip",
    "timezone",
    "ip",
    "latitude",
    "longitude",
)


#: What a problem with a field other than email does to its row (`on_invalid_field`):
#: "drop_field" sends the row without that field (state imported_with_warnings),
#: "reject_row" keeps the row out (state invalid). A bad email always makes the row invalid.
FIELD_POLICIES: tuple[str, ...] = ("drop_field", "reject_row")
DEFAULT_FIELD_POLICY = "drop_field"


class ConfigError(AppError):
    """A configuration problem a person can fix; the message says where and what."""

    title = "Configuration problem"
    default_hint = (
        "Fix the config file in an editor (or with klaviyo-tui exports/connections), then retry."
    )
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class Connection:
    name: str
    display_name: str
    base_url: str = DEFAULT_BASE_URL
    revision: str = DEFAULT_REVISION
    consent_accepted_at: str | None = None  # ISO 8601, UTC
    consent_accepted_by: str | None = None  # OS user name

    @property
    def has_consent(self) -> bool:
        return bool(self.consent_accepted_at)


@dataclass(frozen=True, slots=True)
class Segment:
    """A source plus an optional pandas query filter."""

    name: str
    source: str  # a file path, or a SQLAlchemy URL / sqlite file path when `query` is set
    query: str | None = None  # SQL query for SQL sources
    filter: str | None = None  # pandas DataFrame.query expression


@dataclass(frozen=True, slots=True)
class Mapping:
    """Source column names for each Klaviyo profile field. `email` is mandatory."""

    email: str
    phone_number: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organization: str | None = None
    title: str | None = None
    locale: str | None = None
    location: dict[str, str] = field(default_factory=dict)  # location field -> column
    properties: tuple[str, ...] = ()  # columns sent as custom properties, under their own names

    def fields(self) -> dict[str, str]:
        """Profile field -> column, for the fields that are mapped (location excluded)."""
        out = {}
        for name in PROFILE_FIELDS:
            column = getattr(self, name)
            if column:
                out[name] = column
        return out

    def columns(self) -> list[str]:
        """Every source column this mapping reads, without repeats, in a stable order."""
        seen: dict[str, None] = {}
        for column in [*self.fields().values(), *self.location.values(), *self.properties]:
            seen.setdefault(column, None)
        return list(seen)


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    connection: str
    list_id: str
    segments: tuple[str, ...]
    mapping: Mapping
    default_region: str = "US"
    schedule: str | None = None  # cron expression, evaluated in local time
    list_name: str | None = None  # display only; list_id is what counts
    confirm_timeout_minutes: float | None = None  # a job's no-progress deadline (default 30)
    verify: str = "off"  # read the list back after a run: off | full | sample:N
    on_invalid_field: str = DEFAULT_FIELD_POLICY  # one of FIELD_POLICIES
    sync: SyncSettings = SyncSettings()  # mode, incremental, removals, subscribe (sync_config)


@dataclass(frozen=True, slots=True)
class Config:
    connections: dict[str, Connection] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    exports: dict[str, Export] = field(default_factory=dict)

    def problems(self, export_name: str) -> list[str]:
        """What stops `export_name` from running (missing references, bad schedule); [] if fine.

        Loading is strict about syntax and types but lenient about cross-references, so one
        broken export doesn't stop the TUI from opening the others.
        """
        return export_problems(self, export_name)


def export_problems(config: Config, name: str) -> list[str]:
    """Cross-reference and schedule problems of one export, each saying what to fix."""
    from klaviyo_tui.run.schedule import validate_schedule

    export = config.exports.get(name)
    if export is None:
        return [f"there is no export named {name!r}; see the [exports] tables in the config"]
    out = []
    if export.connection not in config.connections:
        out.append(
            f"export {name!r} uses connection {export.connection!r}, which is not defined; "
            f"add [connections.{export.connection}] or fix the name"
        )
    if not export.segments:
        out.append(f'export {name!r} has no segments; add segments = ["segment-name"]')
    for segment in export.segments:
        if segment not in config.segments:
            out.append(
                f"export {name!r} uses segment {segment!r}, which is not defined; "
                f"add [segments.{segment}] or fix the name"
            )
    if export.schedule and (problem := validate_schedule(export.schedule)):
        out.append(f"export {name!r}: {problem}")
    return out
