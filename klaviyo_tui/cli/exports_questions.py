"""The questions `klaviyo-tui exports create` asks on a terminal for what its flags left out.

Every piece not given is asked for with the builder's defaults and guesses (the email column,
fields from column names, the account's lists), and each answer is checked at once with the
same service checks the save uses, so a typo is asked again instead of failing at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal

import click

from klaviyo_tui.cli.output import say
from klaviyo_tui.cli.prompts import ask, choose, confirm
from klaviyo_tui.cli.views import parse_pairs
from klaviyo_tui.errors import AppError
from klaviyo_tui.run.progress import plural
from klaviyo_tui.services import exports as service
from klaviyo_tui.services import lists as list_service
from klaviyo_tui.services import segments as segment_service
from klaviyo_tui.services.columns import (
    close_column,
    column_label,
    listed_columns,
    typed_column,
)
from klaviyo_tui.services.exports import ExportSpec
from klaviyo_tui.services.segments import SourceInfo
from klaviyo_tui.store.config import Config, Segment

Properties = tuple[str, ...] | Literal["all"]


def _error(error: AppError) -> None:
    say(f"  {error.message}", err=True)
    if error.hint:
        say(f"  {error.hint}", err=True)


class Questions:
    """The terminal conversation: fills what the flags left out, one checked answer at a time."""

    def __init__(self, config: Config, spec: ExportSpec, given: set[str]) -> None:
        self.config, self.spec, self.given = config, spec, given

    def run(self) -> ExportSpec:
        if not self.spec.connection:
            names = sorted(self.config.connections)
            self.set(connection=choose("Connection", names, flag="--connection", default=names[0]))
        info = self.source()
        self.fields(info)
        if "properties" not in self.given:
            self.set(properties=self.properties(info.columns))
        if "phone_number" in self.spec.mapping and "region" not in self.given:
            self.set(default_region=self.region())
        if not (self.spec.list_id or self.spec.list_name):
            self.choose_list()
        if "schedule" not in self.given:
            self.set(schedule=self.schedule())
        return self.spec

    def set(self, **changes: Any) -> None:
        self.spec = dataclasses.replace(self.spec, **changes)

    def source(self) -> SourceInfo:
        while True:
            segment = self._segment()
            try:
                info = segment_service.inspect_source(segment)
            except AppError as error:
                if self.spec.segments or "source" in self.given:
                    raise  # a flag's value: no question would fix it
                _error(error)
                self.set(source=None, query=None)
                continue
            names = ", ".join(map(column_label, info.columns))
            say(f"{plural(len(info.columns), 'column')}: {names}", err=True)
            if self.spec.segments:
                return info
            if "filter" not in self.given:
                self.set(filter=self.filter(segment))
            elif self.spec.filter:  # a flag's filter: checked now, not after every question
                filtered = dataclasses.replace(segment, filter=self.spec.filter)
                rows = segment_service.count_rows(filtered)
                say(f"{plural(rows, 'row')} to export", err=True)
            return info

    def _segment(self) -> Segment:
        spec = self.spec
        if spec.segments:
            return segment_service.segment_named(self.config, spec.segments[0])
        source, query = spec.source, spec.query
        if not source:
            source = ask(
                "Source: a file (CSV, Parquet, xlsx, JSONL) or a database URL",
                flag="--source PATH",
            )
        if query is None and "://" in source:
            query = ask("SQL query", flag="--query SQL")
        self.set(source=source, query=query)
        return segment_service.make_segment(spec.name, source, query=query)

    def filter(self, segment: Segment) -> str | None:
        while True:
            text = ask(
                "Filter (SQL WHERE, e.g. country = 'US'; empty: every row)",
                default="",
                flag="--filter TEXT",
            )
            try:
                rows = segment_service.count_rows(dataclasses.replace(segment, filter=text or None))
            except AppError as error:
                _error(error)
                continue
            say(f"{plural(rows, 'row')} to export", err=True)
            return text or None

    def fields(self, info: SourceInfo) -> None:
        mapping = dict(self.spec.mapping)
        if "email" not in mapping:
            guess = info.email_guess
            mapping["email"] = choose(
                "Email column" + ("" if guess else " (none looks like email addresses)"),
                info.columns,
                flag="--map email=COLUMN",
                default=guess,
                listed=False,  # the columns were printed just above
            )
        if len(self.spec.mapping) <= 1:
            taken = set(mapping.values())
            guesses = {
                f: c
                for f, c in service.suggest_mapping(info.columns).items()
                if f not in mapping and c not in taken
            }
            shown = ", ".join(f"{f} <- {column_label(c)}" for f, c in guesses.items())
            if guesses and confirm(f"Also map {shown}?", default=True):
                mapping.update(guesses)
            while True:
                text = ask(
                    "More fields, as FIELD=COLUMN, comma-separated (empty: none)",
                    default="",
                    flag="--map FIELD=COLUMN",
                    strip=False,  # a column's name may end in a space
                )
                try:
                    more = parse_pairs(tuple(p for p in text.split(",") if p.strip()), "field")
                    more = {f: typed_column(c, info.columns) for f, c in more.items()}
                    service.check_fields(more)
                    self._check_columns(list(more.values()), info.columns)
                except (AppError, click.UsageError) as error:
                    _error(error if isinstance(error, AppError) else AppError(error.message))
                    continue
                mapping.update(more)
                break
        self.set(mapping=mapping)

    @staticmethod
    def _check_columns(columns: list[str], available: list[str]) -> None:
        unknown = [c for c in columns if c not in available]
        if unknown:
            close = close_column(unknown[0], available)
            also = f" (did you mean {close!r}?)" if close else ""
            raise AppError(
                f"no column {unknown[0]!r} in the source{also}",
                hint="Write it as the header does (case and spaces count).",
            )

    def properties(self, columns: list[str]) -> Properties:
        while True:
            text = ask(
                "Custom properties: columns (comma-separated), all, or empty for none",
                default="",
                flag="--property COLUMN or --properties all|none",
                strip=False,  # a column's name may end in a space
            )
            if text.strip().casefold() == "all":
                return "all"
            chosen = listed_columns(text, columns)
            try:
                self._check_columns(list(chosen), columns)
            except AppError as error:
                _error(error)
                continue
            return chosen

    def region(self) -> str:
        while True:
            text = ask(
                "Country of phone numbers written without +code",
                default=self.spec.default_region,
                flag="--default-region CC",
            )
            try:
                return service.check_region(text)
            except AppError as error:
                _error(error)

    def schedule(self) -> str | None:
        while True:
            text = ask(
                "Schedule (cron, e.g. 0 6 * * 1; empty: only when started)",
                default="",
                flag="--schedule CRON",
            )
            try:
                return service.check_schedule(text)
            except AppError as error:
                _error(error)

    def choose_list(self) -> None:
        connection = self.spec.connection or service.default_connection(self.config)
        found = asyncio.run(list_service.find_lists(self.config, connection))
        if found:
            names = ", ".join(lst.name for lst in found[:8]) + (", …" if len(found) > 8 else "")
            say(f"the account has {plural(len(found), 'list')}: {names}", err=True)
        while True:
            text = ask(
                "Klaviyo list: a name to find or create, or a list id",
                default=self.spec.name,
                flag="--list ID or --list-name NAME",
            )
            if any(lst.id == text for lst in found):
                self.set(list_id=text)
                return
            if any(lst.name == text for lst in found) or confirm(
                f"No list named {text!r} in the account: create it?", default=True
            ):
                self.set(list_name=text)
                return


def show_summary(spec: ExportSpec) -> None:
    """What is about to be saved, so the last question is answered knowingly."""
    lines = [("connection", spec.connection or "")]
    if spec.segments:
        lines.append(("segments", ", ".join(spec.segments)))
    else:
        query = f" query {spec.query}" if spec.query else ""
        lines += [("source", f"{spec.source}{query}"), ("filter", spec.filter or "-")]
    lines += [("map", f"{field} <- {column_label(c)}") for field, c in spec.mapping.items()]
    props = spec.properties
    shown = "every other column" if props == "all" else ", ".join(map(column_label, props))
    lines.append(("properties", shown))
    found_later = f"{spec.list_name} (found or created when saved)"
    lines += [("list", spec.list_id or found_later), ("schedule", spec.schedule or "-")]
    say(f"export {spec.name}", err=True)
    for label, value in lines:
        say(f"  {label:<11} {value or '-'}", err=True)
