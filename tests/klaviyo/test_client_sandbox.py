"""The Klaviyo client against the sandbox over real loopback HTTP: every operation and fault kind.

Faults are deterministic: the sandbox draws them from a seeded RNG in request order, and each test
sends its requests one after another. Recovery tests use probability 0.5 over several calls (so a
retry is certain to happen for any seed, and the assertion checks it did); exhaustion tests use 1.0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Notice, Retrying, Waiting
from klaviyo_tui.klaviyo import (
    EXPORT_SCOPES,
    AmbiguousListName,
    AuthError,
    InvalidBaseURL,
    InvalidConfiguration,
    KlaviyoClient,
    KlaviyoError,
    NotFoundError,
    RateLimitedUntil,
    RequestRejected,
    ScopeError,
    UnavailableError,
)
from klaviyo_tui.klaviyo.transport import RATE_LIMIT_WAIT_REASON
from tests.support import sandbox as sandbox_helpers

sandbox = pytest.importorskip("klaviyo_tui.sandbox.server", reason="sandbox server not built yet")
from klaviyo_tui.sandbox import ALL_SCOPES, DEMO_KEY, SandboxSettings  # noqa: E402

SandboxServer = sandbox.SandboxServer
READ_ONLY_KEY = "pk_readonly00000000000000000000000000"
WRONG_KEY = "pk_wrongkey00000000000000000000000000"
FAST = httpx.Timeout(2.0, connect=1.0)


def start(**kw: Any) -> Iterator[Any]:
    kw.setdefault("job_delay", 0.05)
    kw.setdefault("rate_limits", False)
    with SandboxServer(SandboxSettings(**kw)) as server:
        yield server


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """A shared, fault-free sandbox with rate limits off, for the plain operation tests."""
    yield from start(
        keys={DEMO_KEY: ALL_SCOPES, READ_ONLY_KEY: frozenset({"lists:read", "profiles:read"})}
    )


def client(server: Any, key: str = DEMO_KEY, events: list[Any] | None = None, **kw: Any) -> Any:
    kw.setdefault("timeout", FAST)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    return KlaviyoClient(
        server.base_url,
        key,
        on_event=events.append if events is not None else None,
        seed=0,
        **kw,
    )


def body(list_id: str, profiles: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}
                },
                "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
            }
        }
    )


async def wait_done(k: KlaviyoClient, job_ids: list[str]) -> dict[str, Any]:
    """Poll until every job is finished (the sandbox moves jobs on a short timer)."""
    deadline = time.monotonic() + 20
    while True:
        jobs = await k.poll_jobs(job_ids)
        if all(j.finished for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, jobs
        await asyncio.sleep(0.05)


# ---- key check ---------------------------------------------------------------------------------


async def test_verify_key_full_scopes(server: Any) -> None:
    async with client(server) as k:
        check = await k.verify_key()
    assert check.ok
    assert check.missing == []
    assert check.account_name
    assert check.account_id
    assert all(check.granted[s] for s in ALL_SCOPES)
    # Optional: granted only where the sandbox serves the subscribe endpoint and scope.
    assert check.granted["subscriptions:write"] == ("subscriptions:write" in ALL_SCOPES)
    async with client(server) as k:
        assert await k.lists() == await k.lists()  # the probes created nothing


async def test_verify_key_limited_scopes(server: Any) -> None:
    async with client(server, READ_ONLY_KEY) as k:
        check = await k.verify_key()
        with pytest.raises(ScopeError) as info:
            await k.create_list("never")
    assert not check.ok
    assert check.missing == ["lists:write", "profiles:write"]
    assert check.granted["lists:read"]
    assert check.granted["profiles:read"]
    assert not check.granted["accounts:read"]
    assert "lists:write" in check.fix_hint
    assert "this key lacks the scope lists:write" in str(info.value)
    assert "create a key with lists:read, lists:write, profiles:read, profiles:write" in str(
        info.value
    )
    assert info.value.exit_code == ExitCode.AUTH


async def test_verify_key_reads_every_scope_combination() -> None:
    """Each of the 32 subsets of the sandbox's scopes, learned without writing anything."""
    scopes = sorted(ALL_SCOPES)
    subsets = [frozenset(s for b, s in enumerate(scopes) if mask >> b & 1) for mask in range(32)]
    keys = {f"pk_scopes{i:02d}".ljust(37, "0"): sub for i, sub in enumerate(subsets)}
    for srv in start(keys=keys):
        for key, granted in keys.items():
            async with client(srv, key) as k:
                check = await k.verify_key()
            expected = {s: s in granted for s in scopes}
            if "lists:write" not in granted:  # cannot be told apart from the write probe
                expected["profiles:write"] = False
            expected.setdefault("subscriptions:write", False)  # optional; see verify_key
            if not {"lists:write", "profiles:write"} <= granted:
                expected["subscriptions:write"] = False
            assert check.granted == expected, sorted(granted)
            assert check.ok == (granted >= set(EXPORT_SCOPES))
            assert (check.account_name is not None) == ("accounts:read" in granted)
        async with client(srv, list(keys)[-1]) as k:  # the key with every scope
            assert await k.lists() == []  # the write probes created nothing


async def test_wrong_key(server: Any) -> None:
    async with client(server, WRONG_KEY) as k:
        with pytest.raises(AuthError) as info:
            await k.verify_key()
        with pytest.raises(AuthError):
            await k.lists()
    text = str(info.value)
    assert "Klaviyo rejected the API key (pk_…0000)" in text
    assert WRONG_KEY not in text
    assert info.value.exit_code == ExitCode.AUTH


async def test_unknown_revision(server: Any) -> None:
    async with client(server, revision="1999-01-01") as k:
        with pytest.raises(InvalidConfiguration) as info:
            await k.lists()
    assert "1999-01-01" in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_http_refused_for_non_loopback() -> None:
    with pytest.raises(InvalidBaseURL, match="https://"):
        KlaviyoClient("http://sandbox.example:8080", DEMO_KEY)


# ---- lists -------------------------------------------------------------------------------------


async def test_lists_create_find_get_and_paginate() -> None:
    for srv in start():
        async with client(srv) as k:
            created = [await k.create_list(f"Paged {i:02d}") for i in range(35)]
            everything = await k.lists()
            assert sorted(lst.id for lst in everything) == sorted(lst.id for lst in created)
            assert len(everything) == 35  # > 3 pages of 10
            assert [lst.id for lst in await k.lists("Paged 07")] == [created[7].id]
            assert len(await k.search_lists("paged 1")) == 10
            got = await k.get_list(created[3].id)
            assert got.name == "Paged 03"
            assert got.created is not None
            again, made = await k.find_or_create_list("Paged 05")
            assert (again.id, made) == (created[5].id, False)
            fresh, made = await k.find_or_create_list('VIP "export"')
            assert made
            assert fresh.name == 'VIP "export"'
            assert (await k.find_or_create_list('VIP "export"'))[0].id == fresh.id


async def test_two_lists_with_the_name_are_refused_naming_both_ids(server: Any) -> None:
    async with client(server) as k:
        first = await k.create_list("Twin")  # Klaviyo lets two lists share a name
        second = await k.create_list("Twin")
        await k.create_list("Twins")  # a longer name is no twin
        before = await k.lists()
        with pytest.raises(AmbiguousListName) as info:
            await k.find_or_create_list("Twin")
        assert len(await k.lists()) == len(before)  # nothing created
        twin, made = await k.find_or_create_list("Twins")  # one of a name: found as before
        assert (twin.name, made) == ("Twins", False)
    error = info.value
    assert sorted(error.ids) == sorted([first.id, second.id])
    assert first.id in error.message and second.id in error.message and "'Twin'" in error.message
    assert "--list ID" in error.hint
    assert error.exit_code == ExitCode.USAGE


async def test_unknown_list(server: Any) -> None:
    async with client(server) as k:
        with pytest.raises(NotFoundError) as info:
            await k.get_list("Zz9Zz9")
    assert str(info.value) == "list Zz9Zz9 does not exist in this account."
    assert info.value.exit_code == ExitCode.USAGE


# ---- bulk import -------------------------------------------------------------------------------


async def test_import_poll_and_errors(server: Any) -> None:
    async with client(server) as k:
        target, _ = await k.find_or_create_list("Import target")
        ids = []
        for n in range(3):
            job = await k.submit_import(
                body(target.id, [{"email": f"p{n}-{i}@example.com"} for i in range(5)])
            )
            assert job.status in {"queued", "processing"}
            assert job.total_count == 5
            ids.append(job.id)
        jobs = await wait_done(k, ids)
        assert set(jobs) == set(ids)
        assert all(j.completed_count == 5 and j.failed_count == 0 for j in jobs.values())
        single = await wait_done(k, ids[:1])
        assert single[ids[0]].status == "complete"
        assert await k.import_errors(ids[0]) == []
        with pytest.raises(NotFoundError, match="import job"):
            await k.get_job("01AAAAAAAAAAAAAAAAAAAAAAAA")


async def test_import_400_names_rows(server: Any) -> None:
    async with client(server) as k:
        target, _ = await k.find_or_create_list("Import target")
        rows = [{"email": "ok@example.com"}, {"email": "not-an-email"}, {"email": "x@example.com"}]
        # a bad phone beside an email is dropped (live); as the only identifier it is a 400
        rows.append({"phone_number": "12"})
        with pytest.raises(RequestRejected) as info:
            await k.submit_import(body(target.id, rows))
    fields = {(i, f) for i, f, _ in info.value.row_errors}
    assert (1, "email") in fields
    assert (3, "phone_number") in fields
    assert all(detail for _, _, detail in info.value.row_errors)
    assert info.value.exit_code == ExitCode.INPUT


async def test_import_errors_are_read_on_every_page() -> None:
    for srv in start(faults={"rowfail": 1.0}):
        async with client(srv) as k:
            target = await k.create_list("Failing rows")
            job = await k.submit_import(
                body(target.id, [{"email": f"r{i}@example.com"} for i in range(250)])
            )
            done = (await wait_done(k, [job.id]))[job.id]
            errors = await k.import_errors(job.id)
    assert done.failed_count == 250
    assert len(errors) == 250  # three pages of 100
    assert all(e.original_payload and "@example.com" in str(e.original_payload) for e in errors)
    assert all(e.code and e.detail for e in errors)


async def test_remove_from_list(server: Any) -> None:
    async with client(server) as k:
        target = await k.create_list("Remove some")
        job = await k.submit_import(
            body(target.id, [{"email": f"rm{i}@example.com"} for i in range(5)])
        )
        await wait_done(k, [job.id])
        members = await asyncio.to_thread(sandbox_helpers.list_members, server.base_url, target.id)
        by_email = {m["attributes"]["email"]: m["id"] for m in members}
        gone = [by_email["rm1@example.com"], by_email["rm3@example.com"]]
        assert await k.remove_from_list(target.id, [*gone, gone[0]]) == 2
        left = await asyncio.to_thread(sandbox_helpers.member_emails, server.base_url, target.id)
        with pytest.raises(NotFoundError, match="list Zz9Zz9 does not exist"):
            await k.remove_from_list("Zz9Zz9", gone)
    assert left == {"rm0@example.com", "rm2@example.com", "rm4@example.com"}


async def test_failed_import_posts_are_looked_up_then_sent_again() -> None:
    """The sandbox's faults strike before a request takes effect, so every failed POST left no
    job: the client looks, finds none, and sends again; each batch gets its own job."""
    for srv in start(faults={"502": 0.5}, seed=5):
        events: list[Any] = []
        async with client(srv, events=events, max_retries=12) as k:
            target = await k.create_list("Flaky imports")
            jobs = []
            for n in (3, 4, 5, 6):
                rows = [{"email": f"f{n}-{i}@example.com"} for i in range(n)]
                jobs.append(await k.submit_import(body(target.id, rows), profiles=n))
            done = await wait_done(k, [j.id for j in jobs])
    assert len({j.id for j in jobs}) == 4
    assert [done[j.id].total_count for j in jobs] == [3, 4, 5, 6]
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("sending the batch again" in n for n in notices), "no POST failed: change seed"
    assert not any("instead of sending" in n for n in notices)


# ---- faults ------------------------------------------------------------------------------------

REASONS = {
    "429": "rate limit: Klaviyo asked to wait 1 s",
    "500": "HTTP 500",
    "502": "HTTP 502",
    "503": "HTTP 503",
    "reset": "reset",
    "hang": "did not answer within 0.3 s",
    "cf403": "Klaviyo's edge refused the request (HTML 403); retrying",
}
SHORT = httpx.Timeout(0.3, connect=1.0)


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.slow) if k == "429" else k for k in REASONS]
)
async def test_fault_recovered_by_retry(kind: str) -> None:
    calls = 3 if kind in ("429", "hang") else 8
    for srv in start(faults={kind: 0.5}, seed=3):
        events: list[Any] = []
        async with client(srv, events=events, timeout=SHORT, max_retries=12) as k:
            for _ in range(calls):
                assert await k.lists() == []
    retries = [e for e in events if isinstance(e, Retrying)]
    assert retries, "the seeded fault never fired"
    assert all(REASONS[kind] in e.reason for e in retries)
    if kind == "429":
        waits = [e for e in events if isinstance(e, Waiting)]
        assert any(e.reason == RATE_LIMIT_WAIT_REASON and e.seconds >= 1 for e in waits)


@pytest.mark.parametrize("kind", [k for k in REASONS if k != "429"])
async def test_fault_exhausts_retries(kind: str) -> None:
    for srv in start(faults={kind: 1.0}):
        events: list[Any] = []
        async with client(srv, events=events, timeout=SHORT, max_retries=2) as k:
            with pytest.raises(UnavailableError) as info:
                await k.get_list("AbCdEf")
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [1, 2]
    text = str(info.value)
    assert "after 3 attempts" in text
    assert REASONS[kind].removesuffix("; retrying") in text
    assert DEMO_KEY not in text
    assert info.value.exit_code == ExitCode.UNAVAILABLE


@pytest.mark.slow
async def test_429s_wait_within_their_budget_then_stop_resumable() -> None:
    """Throttled on every call: the 429s do not use up the retry cap (0 here); one wait fits the
    budget, the next does not, and the run is told to resume later."""
    for srv in start(faults={"429": 1.0}):
        events: list[Any] = []
        async with client(srv, events=events, max_retries=0, rate_limit_budget=1.6) as k:
            with pytest.raises(RateLimitedUntil) as info:
                await k.get_list("AbCdEf")
    assert [e.reason for e in events if isinstance(e, Waiting)] == [RATE_LIMIT_WAIT_REASON]
    assert len([e for e in events if isinstance(e, Retrying)]) == 1
    assert info.value.exit_code == ExitCode.INTERRUPTED
    assert info.value.retry_at.strftime("%H:%M") in str(info.value)


async def test_no_429_when_paced_and_retry_after_honoured() -> None:
    for srv in start(rate_limits=True):
        events: list[Any] = []
        async with client(srv, events=events) as k:
            started = time.monotonic()
            await k.verify_key()
            await k.verify_key()  # accounts is 1/s: the pacer waits instead of getting a 429
            assert time.monotonic() - started >= 0.9
        assert not [e for e in events if isinstance(e, Retrying)]
        assert any(isinstance(e, Waiting) and "1/s" in e.reason for e in events)
        # Other clients (other processes on the same account) do not share our pacer: the sandbox
        # answers 429 with Retry-After, and the client waits it out instead of failing. Three
        # clients in quick succession: even if the 1 s window turns over once between them, two
        # of them share a window, so the later one is throttled.
        other: list[Any] = []
        async with client(srv) as a, client(srv, events=other) as b, client(srv, events=other) as c:
            checks = [await a.verify_key(), await b.verify_key(), await c.verify_key()]
        assert all(check.ok for check in checks)
        assert any(isinstance(e, Retrying) and "rate limit" in e.reason for e in other)
        assert any(isinstance(e, Waiting) and e.reason == RATE_LIMIT_WAIT_REASON for e in other)


async def test_key_never_in_any_error_text(server: Any) -> None:
    texts: list[str] = []
    for key in (DEMO_KEY, READ_ONLY_KEY, WRONG_KEY):
        async with client(server, key, max_retries=0) as k:
            assert key not in repr(k)
            for call in (
                k.verify_key(),
                k.create_list("x"),
                k.get_list("Nope00"),
                k.submit_import(b'{"data": 1}'),
                k.get_job("01AAAAAAAAAAAAAAAAAAAAAAAA"),
                k.import_errors("01AAAAAAAAAAAAAAAAAAAAAAAA"),
            ):
                try:
                    await call
                except KlaviyoError as exc:
                    texts.append(f"{exc}\n{exc!r}")
    assert len(texts) >= 10
    assert not [t for t in texts if any(k in t for k in (DEMO_KEY, READ_ONLY_KEY, WRONG_KEY))]
