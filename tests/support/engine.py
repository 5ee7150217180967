"""Shared set-up for engine and CLI tests: a config on disk, a sandbox list, and readers of results
through the sandbox's public API (the same API a real Klaviyo exposes)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
from pathlib import Path
from typing import Any

import httpx
import tomlkit

from klaviyo_tui.events import RunSummary
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.history import HistoryStore
from tests.support import sandbox as sandbox_helpers

REVISION = sandbox_helpers.REVISION


async def interrupt_at(
    config: Config, store: HistoryStore, event: type, export: str = "customers", **kw: Any
) -> None:
    """Run `export` until it yields an `event`, then cancel it, as Ctrl-C or the TUI's cancel
    do: the run is recorded interrupted."""
    seen = asyncio.Event()

    async def run() -> None:
        async for got in run_export(
            config.exports[export], config=config, api_key=DEMO_KEY, store=store, **kw
        ):
            if isinstance(got, event):
                seen.set()

    task = asyncio.create_task(run())
    await asyncio.wait({task, asyncio.create_task(seen.wait())}, return_when="FIRST_COMPLETED")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run_id_of(summary: RunSummary) -> int:
    """The summary's run id: every run that started has a record."""
    assert summary.run_id is not None, summary
    return summary.run_id


class CorruptingTransport(httpx.AsyncBaseTransport):
    """A proxy that breaks these emails in the first import POST, so the sandbox answers 400
    with a pointer to each row and those rows end rejected by Klaviyo."""

    def __init__(self, emails: list[str]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.emails = emails
        self.corrupted: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and "profile-bulk-import-jobs" in path and not self.corrupted:
            body = await request.aread()
            for email in self.emails:
                body = body.replace(email.encode(), email.replace("@", "@@broken").encode(), 1)
            self.corrupted.append(body)
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            request = httpx.Request(request.method, request.url, headers=headers, content=body)
        return await self.inner.handle_async_request(request)


def create_list(base_url: str, name: str = "Customers", key: str = DEMO_KEY) -> str:
    with sandbox_helpers.client(base_url, key) as c:
        return sandbox_helpers.create_list(c, name)


def list_emails(base_url: str, list_id: str, key: str = DEMO_KEY) -> list[str]:
    """Every member's email, read page by page through GET /api/lists/{id}/profiles."""
    return [p["attributes"]["email"] for p in sandbox_helpers.list_members(base_url, list_id, key)]


def list_identities(base_url: str, list_id: str, key: str = DEMO_KEY) -> list[dict[str, Any]]:
    """Every member's email, phone_number and external_id (absent when the profile has none),
    read page by page through GET /api/lists/{id}/profiles with a sparse fieldset."""
    out: list[dict[str, Any]] = []
    url: str | None = f"/api/lists/{list_id}/profiles"
    params: dict[str, str] | None = {
        "page[size]": "100",
        "fields[profile]": "email,phone_number,external_id",
    }
    with sandbox_helpers.client(base_url, key) as c:
        while url:
            body = sandbox_helpers._get(c, url, params).json()
            out += [
                {k: v for k, v in p["attributes"].items() if v is not None} for p in body["data"]
            ]
            url, params = body.get("links", {}).get("next"), None
    return out


def remove_from_list_behind_our_back(base_url: str, list_id: str, email: str) -> None:
    """A person or another integration takes this member off the list."""
    with sandbox_helpers.client(base_url) as c:
        profile = sandbox_helpers.profile_by_email(c, email)
        assert profile is not None
        body = {"data": [{"type": "profile", "id": profile["id"]}]}
        r = c.request("DELETE", f"/api/lists/{list_id}/relationships/profiles", json=body)
        assert r.status_code == 204, r.text


def import_jobs(base_url: str, key: str = DEMO_KEY) -> list[dict[str, Any]]:
    """Every bulk import job of the account, through GET /api/profile-bulk-import-jobs."""
    jobs: list[dict[str, Any]] = []
    url: str | None = "/api/profile-bulk-import-jobs?page[size]=100"
    with sandbox_helpers.client(base_url, key) as c:
        while url:
            body = sandbox_helpers._get(c, url).json()
            jobs.extend(body["data"])
            url = body.get("links", {}).get("next")
    return jobs


def write_customers(path: Path, rows: list[dict[str, str]]) -> Path:
    fields: list[str] = []
    for row in rows:
        for key in row:
            if key not in fields:
                fields.append(key)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_config(
    path: Path,
    *,
    base_url: str,
    list_id: str,
    sources: dict[str, Path],
    mapping: dict[str, Any] | None = None,
    consent: bool = True,
    schedule: str | None = None,
    filters: dict[str, str] | None = None,
    queries: dict[str, str] | None = None,
    export: str = "customers",
    export_extra: dict[str, Any] | None = None,
) -> Config:
    """Write a config with one connection, one segment per source and one export; load it."""
    connection: dict[str, Any] = {
        "display_name": "Sandbox",
        "base_url": base_url,
        "revision": REVISION,
    }
    if consent:
        connection["consent_accepted_at"] = "2026-11-01T10:00:00+00:00"
        connection["consent_accepted_by"] = "tester"
    segments: dict[str, Any] = {}
    for name, source in sources.items():
        segments[name] = {"source": str(source)}
        if filters and name in filters:
            segments[name]["filter"] = filters[name]
        if queries and name in queries:
            segments[name]["query"] = queries[name]
    export_table: dict[str, Any] = {
        "connection": "sandbox",
        "list_id": list_id,
        "segments": list(sources),
        "default_region": "US",
        "mapping": mapping or {"email": "email"},
    }
    if schedule:
        export_table["schedule"] = schedule
    mapping_table = export_table.pop("mapping")
    export_table.update(export_extra or {})  # sync keys: mode, incremental, subscribe, ...
    export_table["mapping"] = mapping_table
    document = {
        "connections": {"sandbox": connection},
        "segments": segments,
        "exports": {export: export_table},
    }
    path.write_text("# test config\n" + tomlkit.dumps(document), encoding="utf-8")
    return load_config(path)
