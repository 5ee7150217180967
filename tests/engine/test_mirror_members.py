"""Mirror removals from what the last removal read (run/sync/members.py): the next run reads
only who joined the list since, and removes a leaver only after checking it against Klaviyo as
it is now; anything that does not check out falls back to reading the whole list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Notice
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_sync import add_others, export_config, rows_of, run
from tests.support import sandbox as sandbox_helpers
from tests.support.engine import (
    create_list,
    list_emails,
    remove_from_list_behind_our_back,
    write_customers,
)


class MemberReads(httpx.AsyncBaseTransport):
    """Records the filter of every read of a list's members (None: the whole list); the
    look-ups of members by email (`…/relationships/profiles`) are not reads of the list."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.filters: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        reading = path.startswith("/api/lists/") and path.endswith("/profiles")
        first_page = "page[cursor]" not in request.url.params  # one entry per read
        if request.method == "GET" and reading and "/relationships/" not in path and first_page:
            self.filters.append(request.url.params.get("filter"))
        return await self.inner.handle_async_request(request)


async def mirror_run(
    tmp_path: Path,
    sandbox: SandboxServer,
    store: HistoryStore,
    rows: list[dict[str, str]],
    list_id: str,
) -> tuple[Any, list[object], list[str | None]]:
    config: Config = export_config(tmp_path, sandbox.base_url, rows, list_id, mode="mirror")
    reads = MemberReads()
    async with KlaviyoClient(sandbox.base_url, DEMO_KEY, transport=reads) as client:
        summary, events = await run(config, store, client=client)
    assert summary.exit_code == ExitCode.OK, summary.error
    return summary, events, reads.filters


def whole_list_notes(events: list[object]) -> list[str]:
    return [
        e.message for e in events if isinstance(e, Notice) and "reading the whole list" in e.message
    ]


async def test_the_next_removal_reads_only_who_joined_since(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    others = [f"other{i}@example.com" for i in range(3)]
    add_others(sandbox.base_url, list_id, others)
    rows = rows_of(40)
    await mirror_run(tmp_path, sandbox, store, rows, list_id)
    stay = [r for i, r in enumerate(rows) if i not in (3, 17)]
    first, _, reads = await mirror_run(tmp_path, sandbox, store, stay, list_id)
    assert first.sync["removed"] == 2
    assert reads == [None]  # nothing kept yet: the whole list
    newcomers = rows_of(5, start=40)
    await mirror_run(tmp_path, sandbox, store, stay + newcomers, list_id)

    # an old member and one who joined after the last removal's read both leave
    now = [r for r in stay + newcomers if r["email"] not in ("c5@example.com", "c41@example.com")]
    second, events, reads = await mirror_run(tmp_path, sandbox, store, now, list_id)

    assert second.sync["removed"] == 2
    assert len(reads) == 1 and reads[0] is not None
    assert reads[0].startswith("greater-than(joined_group_at,")
    assert not whole_list_notes(events)
    assert set(list_emails(sandbox.base_url, list_id)) == {r["email"] for r in now} | set(others)


async def test_a_leaver_whose_email_changed_in_klaviyo_sends_it_back_to_the_whole_list(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """c10's profile now carries another customer's address: removing it by the id the last
    read saw would take that other customer off the list."""
    list_id = create_list(sandbox.base_url)
    rows = rows_of(30)
    await mirror_run(tmp_path, sandbox, store, rows, list_id)
    stay = [r for r in rows if r["email"] != "c3@example.com"]
    await mirror_run(tmp_path, sandbox, store, stay, list_id)
    with sandbox_helpers.client(sandbox.base_url) as c:
        moved = sandbox_helpers.profile_by_email(c, "c10@example.com")
        assert moved is not None
        resource = {
            "type": "profile",
            "id": moved["id"],
            "attributes": {"email": "moved@example.com"},
        }
        body = sandbox_helpers.import_body([], list_id)
        body["data"]["attributes"]["profiles"]["data"] = [resource]
        r = c.post("/api/profile-bulk-import-jobs", json=body)
        assert r.status_code == 202, r.text
        sandbox_helpers.wait_job(c, r.json()["data"]["id"])
        assert sandbox_helpers.profile_by_email(c, "moved@example.com") is not None

    now = [r for r in stay if r["email"] != "c10@example.com"]
    summary, events, reads = await mirror_run(tmp_path, sandbox, store, now, list_id)

    assert whole_list_notes(events) and reads[-1] is None  # checked, then the whole list
    assert "has another email in Klaviyo now" in whole_list_notes(events)[0]
    assert summary.sync["removed"] == 0  # c10's address is in no member any more
    assert "moved@example.com" in set(list_emails(sandbox.base_url, list_id))


async def test_a_leaver_already_off_the_list_is_not_counted_as_removed(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(30)
    await mirror_run(tmp_path, sandbox, store, rows, list_id)
    stay = [r for r in rows if r["email"] != "c3@example.com"]
    await mirror_run(tmp_path, sandbox, store, stay, list_id)
    remove_from_list_behind_our_back(sandbox.base_url, list_id, "c20@example.com")

    now = [r for r in stay if r["email"] not in ("c20@example.com", "c21@example.com")]
    summary, events, reads = await mirror_run(tmp_path, sandbox, store, now, list_id)

    assert summary.sync["removed"] == 1  # c21; c20 was not in the list any more
    assert not whole_list_notes(events) and all(f is not None for f in reads)
    assert set(list_emails(sandbox.base_url, list_id)) == {r["email"] for r in now}


async def test_a_profile_another_export_of_the_list_sends_is_never_removed(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """Export "vip" (upsert) sends c0-c9 to the list; "customers" (mirror) sends c5-c29. When
    c5-c7 leave "customers", c5-c7 stay: "vip" still sends them, and as unchanged rows it
    would never add them back. c20 left too, and only "customers" sent it: it goes."""
    list_id = create_list(sandbox.base_url)
    vip_source = write_customers(tmp_path / "vip.csv", rows_of(10))
    rows = rows_of(25, start=5)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, mode="mirror")
    text = (tmp_path / "config.toml").read_text(encoding="utf-8")
    text += (
        f'\n[segments.vip]\nsource = "{vip_source}"\n\n[exports.vip]\nconnection = "sandbox"\n'
        f'list_id = "{list_id}"\nsegments = ["vip"]\nincremental = true\n\n'
        '[exports.vip.mapping]\nemail = "email"\n'
    )
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    async for _ in run_export(config.exports["vip"], config=config, api_key=DEMO_KEY, store=store):
        pass
    await run(config, store)
    left = {"c5@example.com", "c6@example.com", "c7@example.com", "c20@example.com"}
    stay = [r for r in rows if r["email"] not in left]
    write_customers(tmp_path / "c.csv", stay)

    summary, events = await run(config, store)

    assert summary.exit_code == ExitCode.OK, summary.error
    assert summary.sync["removed"] == 1 and summary.sync["kept_for_other_exports"] == 3
    notes = [e.message for e in events if isinstance(e, Notice)]
    assert any("3 profile(s) that left the segment stay" in m and "'vip'" in m for m in notes)
    members = set(list_emails(sandbox.base_url, list_id))
    assert members == {r["email"] for r in stay} | {f"c{i}@example.com" for i in range(10)}
