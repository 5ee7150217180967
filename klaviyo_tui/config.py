"""The TOML configuration: typed, frozen views for the code, the tomlkit document kept for edits.

CONTRACT (other modules rely on these names; the implementation below the types is owned by the
config helper and may grow, but these signatures stay):

    load_config(path: Path | None = None) -> Config          # raises ConfigError (path, line, col)
    Config.connections / .segments / .exports : dict[str, ...]
    ConfigStore(path)                       # edit-in-place writer, comments and key order kept
        .config -> Config
        .put_connection(c: Connection) / .remove_connection(name)
        .put_segment(s: Segment) / .remove_segment(name)
        .put_export(e: Export) / .remove_export(name)
        .save()                              # atomic, 0600, never overwrites a broken file
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


class ConfigError(Exception):
    """A configuration problem a person can fix; the message says where and what."""


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


@dataclass(frozen=True, slots=True)
class Config:
    connections: dict[str, Connection] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    exports: dict[str, Export] = field(default_factory=dict)
