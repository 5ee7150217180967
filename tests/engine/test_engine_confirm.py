"""Every row's final state is what Klaviyo confirmed, even when Klaviyo misbehaves: refused
fields resent without them, identifier conflicts resent in a follow-up job, jobs that never
finish or end in a status outside the spec left unconfirmed (and asked about again on resume),
expired jobs resent, the shared rate limit ending the run resumable, and the list read back.

Everything talks to the sandbox over loopback. Where Klaviyo's misbehaviour cannot be asked of
the sandbox (a job that ends `failed` and later turns out complete, a 400 that repeats), a small
proxy in front of it rewrites the answer, and says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import JobUnconfirmed, Notice, RowState
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.faults import FaultInjector
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_engine import customers, drain, one_csv_export
from tests.support import sandbox as sandbox_helpers
from tests.support.engine import import_jobs, list_emails, run_id_of

GB_PHONE = "+447911123456"  # valid, but outside an account that may only text the US
MAPPING = {"email": "email", "phone_number": "phone", "first_name": "first_name"}


Hook = Callable[[httpx.Request], Awaitable[httpx.Request | httpx.Response]]


class Proxy(httpx.AsyncBaseTransport):
    """Forwards to the sandbox; `before` may change or answer a request, `after` the answer."""

    def __init__(
        self,
        before: Hook | None = None,
        after: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None,
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.before, self.after = before, after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.before is not None:
            changed = await self.before(request)
            if isinstance(changed, httpx.Response):
                return changed
            request = changed
        response = await self.inner.handle_async_request(request)
        if self.after is None:
            return response
        await response.aread()
        return self.after(request, response)

    async def aclose(self) -> None:
        await self.inner.aclose()


def with_json(response: httpx.Response, body: Any) -> httpx.Response:
    headers = {
        k: v for k, v in response.headers.items() if k not in ("content-length", "content-encoding")
    }
    return httpx.Response(response.status_code, headers=headers, content=orjson.dumps(body))


def is_job_read(request: httpx.Request) -> bool:
    return request.method == "GET" and "/api/profile-bulk-import-jobs" in request.url.path


def report_failed(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    """Klaviyo answering a job read with status `failed` (seen live; not in the spec)."""
    if not is_job_read(request) or "import-errors" in request.url.path:
        return response
    body = response.json()
    items = body["data"] if isinstance(body["data"], list) else [body["data"]]
    for item in items:
        item["attributes"]["status"] = "failed"
    return with_json(response, body)


def client_for(sandbox: SandboxServer, transport: httpx.AsyncBaseTransport) -> KlaviyoClient:
    return KlaviyoClient(sandbox.base_url, DEMO_KEY, transport=transport, backoff_base=0.01)


def failures_by_row(store: HistoryStore, run_id: int | None) -> dict[int, Any]:
    assert run_id is not None
    out: dict[int, Any] = {}
    for failure in store.failures(run_id):
        assert failure.row not in out, f"row {failure.row} has two final states"
        out[failure.row] = failure
    return out


def strict(config: Config, name: str = "customers") -> Config:
    config.exports[name] = replace(config.exports[name], on_invalid_field="reject_row")
    return config


# ---- a field Klaviyo refuses costs the field, not the customer ---------------------------------


async def test_phone_outside_the_sms_regions_is_resent_without_it(
    tmp_path: Path, store: HistoryStore
) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, sms_regions=frozenset({"US"}))
    with SandboxServer(settings) as server:
        rows = customers(20)
        for i in (2, 7, 11):  # each customer their own number (a shared one is never sent)
            rows[i]["phone"] = f"{GB_PHONE[:-2]}{i:02d}"
        config, list_id = one_csv_export(tmp_path, server.base_url, rows, mapping=MAPPING)
        summary, events = await drain("customers", config, store)
        assert summary.exit_code == ExitCode.OK, summary.error
        assert summary.counts[RowState.IMPORTED_WITH_WARNINGS.value] == 3
        assert summary.counts[RowState.IMPORTED.value] == 17
        assert summary.counts[RowState.REJECTED.value] == 0
        assert len(list_emails(server.base_url, list_id)) == 20  # nobody lost
        with sandbox_helpers.client(server.base_url) as c:
            kept = sandbox_helpers.profile_by_email(c, "customer2@example.com")
            assert kept is not None and kept["attributes"].get("phone_number") is None
        warned = failures_by_row(store, summary.run_id)
        assert sorted(warned) == [3, 8, 12]
        for row, failure in warned.items():
            assert failure.state is RowState.IMPORTED_WITH_WARNINGS
            assert (failure.column, failure.value) == (
                "phone_number",
                f"{GB_PHONE[:-2]}{row - 1:02d}",
            )
            assert "not in a supported region" in failure.reason
        assert summary.rejects_path is not None
        assert "imported_with_warnings" in summary.rejects_path.read_text()
        assert any(isinstance(e, Notice) and "without phone_number" in e.message for e in events)
        assert len(import_jobs(server.base_url)) == summary.jobs == 1  # the 400 made no job
        assert store.journal(run_id_of(summary))[0].warned == 3


async def test_reject_row_policy_keeps_the_strict_behaviour(
    tmp_path: Path, store: HistoryStore
) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, sms_regions=frozenset({"US"}))
    with SandboxServer(settings) as server:
        rows = customers(10)
        rows[4]["phone"] = GB_PHONE
        config, list_id = one_csv_export(tmp_path, server.base_url, rows, mapping=MAPPING)
        summary, _ = await drain("customers", strict(config), store)
        assert summary.exit_code == ExitCode.PARTIAL
        assert summary.counts[RowState.REJECTED.value] == 1
        assert summary.counts[RowState.IMPORTED_WITH_WARNINGS.value] == 0
        assert "customer4@example.com" not in list_emails(server.base_url, list_id)
        (failure,) = failures_by_row(store, summary.run_id).values()
        assert (failure.row, failure.state, failure.column) == (
            5,
            RowState.REJECTED,
            "phone_number",
        )


def refusing(fields_in_turn: list[str], row: int = 0) -> Hook:
    """A 400 at the row's next field in `fields_in_turn` that the body still holds: Klaviyo
    finding one more problem each round."""

    async def before(request: httpx.Request) -> httpx.Request | httpx.Response:
        if request.method != "POST" or "profile-bulk-import-jobs" not in request.url.path:
            return request
        profile = orjson.loads(await request.aread())["data"]["attributes"]["profiles"]["data"]
        attrs = profile[row]["attributes"]
        for name in fields_in_turn:
            head, _, leaf = name.partition("/")
            if (leaf and leaf in (attrs.get(head) or {})) or (not leaf and head in attrs):
                return httpx.Response(
                    400,
                    json={
                        "errors": [
                            {
                                "status": 400,
                                "code": "invalid",
                                "title": "Invalid input.",
                                "detail": f"{name} is not acceptable here",
                                "source": {
                                    "pointer": f"/data/attributes/profiles/data/{row}"
                                    f"/attributes/{name}"
                                },
                            }
                        ]
                    },
                )
        return request

    return before


async def test_resends_go_on_while_each_round_removes_something(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """Seven rounds, each refusing one more property: more than the old fixed cap of five."""
    props = [f"p{i}" for i in range(7)]
    rows = [dict(r, **{p: "x" for p in props}) for r in customers(5)]
    config, list_id = one_csv_export(
        tmp_path, sandbox.base_url, rows, mapping={"email": "email", "properties": props}
    )
    posts: list[int] = []
    hook = refusing([f"properties/{p}" for p in props])

    async def counting(request: httpx.Request) -> httpx.Request | httpx.Response:
        if request.method == "POST":
            posts.append(1)
        return await hook(request)

    async with client_for(sandbox, Proxy(before=counting)) as client:
        summary, _ = await drain("customers", config, store, client=client)
    assert summary.exit_code == ExitCode.OK, summary.error
    assert len(posts) == 8
    assert summary.counts[RowState.IMPORTED_WITH_WARNINGS.value] == 1
    assert len(list_emails(sandbox.base_url, list_id)) == 5
    (failure,) = failures_by_row(store, summary.run_id).values()
    assert failure.column == ", ".join(f"properties/{p}" for p in props)


async def test_a_round_that_removes_nothing_stops_with_a_clear_error(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(3)
    config, _ = one_csv_export(tmp_path, sandbox.base_url, rows, mapping=MAPPING)
    hook = refusing(["phone_number"])
    seen: list[int] = []

    async def stubborn(request: httpx.Request) -> httpx.Request | httpx.Response:
        """Keeps refusing the phone after it is gone (a confused Klaviyo)."""
        answer = await hook(request)
        if isinstance(answer, httpx.Response) or request.method != "POST":
            seen.append(1)
            return answer
        seen.append(1)
        return httpx.Response(
            400,
            json={
                "errors": [
                    {
                        "status": 400,
                        "code": "invalid",
                        "title": "Invalid input.",
                        "detail": "phone_number is not acceptable here",
                        "source": {
                            "pointer": "/data/attributes/profiles/data/0/attributes/phone_number"
                        },
                    }
                ]
            },
        )

    async with client_for(sandbox, Proxy(before=stubborn)) as client:
        summary, _ = await drain("customers", config, store, client=client)
    assert summary.exit_code == ExitCode.PARTIAL
    assert summary.error is not None and "already removed" in summary.error
    assert summary.counts[RowState.NOT_SENT.value] == 3
    assert import_jobs(sandbox.base_url) == []


async def test_identifier_of_an_existing_profile_is_resent_without_it(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """The phone belongs to another customer already in the account: the import error names it,
    and a follow-up job adds our customer without the phone."""
    taken = "+14155550199"
    with sandbox_helpers.client(sandbox.base_url) as c:
        sandbox_helpers.run_import(c, [{"email": "someone@else.com", "phone_number": taken}])
    rows = customers(12)
    rows[6]["phone"] = taken
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows, mapping=MAPPING)
    summary, events = await drain("customers", config, store)
    assert summary.exit_code == ExitCode.OK, summary.error
    assert summary.counts[RowState.IMPORTED_WITH_WARNINGS.value] == 1
    assert summary.counts[RowState.IMPORTED.value] == 11
    assert "customer6@example.com" in list_emails(sandbox.base_url, list_id)
    (failure,) = failures_by_row(store, summary.run_id).values()
    assert (failure.row, failure.column, failure.value) == (7, "phone_number", taken)
    assert failure.state is RowState.IMPORTED_WITH_WARNINGS
    with sandbox_helpers.client(sandbox.base_url) as c:
        other = sandbox_helpers.profile_by_email(c, "someone@else.com")
        assert other is not None and other["attributes"]["phone_number"] == taken
    assert summary.jobs == 2  # the batch's job and the follow-up
    assert any(
        isinstance(e, Notice) and "sent again without phone_number" in e.message for e in events
    )


async def test_identifier_conflict_under_reject_row_policy_rejects_the_row(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    taken = "+14155550198"
    with sandbox_helpers.client(sandbox.base_url) as c:
        sandbox_helpers.run_import(c, [{"email": "someone@else.com", "phone_number": taken}])
    rows = customers(4)
    rows[1]["phone"] = taken
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows, mapping=MAPPING)
    summary, _ = await drain("customers", strict(config), store)
    assert summary.counts[RowState.REJECTED.value] == 1
    assert "customer1@example.com" not in list_emails(sandbox.base_url, list_id)
    assert summary.jobs == 1


# ---- jobs Klaviyo never confirms ----------------------------------------------------------------


async def test_a_stuck_job_is_unconfirmed_after_the_deadline(
    tmp_path: Path, store: HistoryStore
) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"stuck": 1.0})
    with SandboxServer(settings) as server:
        config, _ = one_csv_export(tmp_path, server.base_url, customers(15))
        summary, events = await drain("customers", config, store, confirm_timeout_minutes=0.5 / 60)
    assert summary.exit_code == ExitCode.PARTIAL
    assert summary.counts[RowState.UNCONFIRMED.value] == 15
    assert summary.counts[RowState.IMPORTED.value] == 0
    assert summary.counts[RowState.NOT_SENT.value] == 0
    assert summary.error is not None
    assert "15 row(s) are unconfirmed" in summary.error and "--resume" in summary.error
    (event,) = [e for e in events if isinstance(e, JobUnconfirmed)]
    assert "no progress" in event.reason and "processing" in event.reason
    waits = [
        i
        for i, e in enumerate(events)
        if isinstance(e, Notice) and e.message.startswith("waiting for Klaviyo: 1 job has shown")
    ]
    assert waits and waits[0] < events.index(event)  # said while it waited, not only at the end
    journal = store.journal(run_id_of(summary))
    assert journal[0].state == "unconfirmed" and journal[0].job_id == event.job_id
    record = store.resumable_run("customers")
    assert record is not None and record.id == summary.run_id and record.status == "partial"
    failures = failures_by_row(store, summary.run_id)
    assert len(failures) == 15
    assert all(f.state is RowState.UNCONFIRMED for f in failures.values())


async def test_a_job_in_status_failed_is_unconfirmed_at_once(
    tmp_path: Path, store: HistoryStore
) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"badstatus": 1.0})
    with SandboxServer(settings) as server:
        config, list_id = one_csv_export(tmp_path, server.base_url, customers(8))
        summary, events = await drain("customers", config, store)  # default deadline: 30 min
        assert list_emails(server.base_url, list_id) == []  # nothing applied
    assert summary.exit_code == ExitCode.PARTIAL
    assert summary.counts[RowState.UNCONFIRMED.value] == 8
    (event,) = [e for e in events if isinstance(e, JobUnconfirmed)]
    assert "'failed'" in event.reason


async def test_resume_asks_about_unconfirmed_jobs_again(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """The first run hears `failed` for its job (a proxy says so); the resumed run asks the
    sandbox itself, which completed the job: every row is confirmed, nothing is sent twice."""
    rows = customers(30)
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    async with client_for(sandbox, Proxy(after=report_failed)) as client:
        first, _ = await drain("customers", config, store, client=client)
    assert first.counts[RowState.UNCONFIRMED.value] == 30
    assert first.exit_code == ExitCode.PARTIAL
    jobs_before = len(import_jobs(sandbox.base_url))
    second, events = await drain("customers", config, store, resume=True)
    assert second.run_id == first.run_id
    assert second.exit_code == ExitCode.OK, second.error
    assert second.counts[RowState.IMPORTED.value] == 30
    assert second.counts[RowState.UNCONFIRMED.value] == 0
    assert len(import_jobs(sandbox.base_url)) == jobs_before == 1  # asked again, not resent
    assert any(isinstance(e, Notice) and "asking about it again" in e.message for e in events)
    assert store.failures(run_id_of(second)) == []
    record = store.run(run_id_of(second))
    assert record is not None and record.status == "ok"
    assert len(list_emails(sandbox.base_url, list_id)) == 30


async def test_an_expired_job_on_resume_sends_the_batch_again(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(10)
    rows[3]["email"] = "broken@"  # invalid: stays in the rejects, once
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    async with client_for(sandbox, Proxy(after=report_failed)) as client:
        first, _ = await drain("customers", config, store, client=client)
    assert first.counts[RowState.UNCONFIRMED.value] == 9
    (job_id,) = [j["id"] for j in import_jobs(sandbox.base_url)]
    del sandbox.app.store.jobs[job_id]  # Klaviyo forgets jobs after a while
    second, events = await drain("customers", config, store, resume=True)
    assert second.exit_code == ExitCode.OK, second.error  # invalid rows are not Klaviyo's
    assert second.counts[RowState.IMPORTED.value] == 9
    assert second.counts[RowState.INVALID.value] == 1
    assert second.counts[RowState.UNCONFIRMED.value] == 0
    notes = [e.message for e in events if isinstance(e, Notice)]
    assert any(job_id in n and "sending the batch again" in n for n in notes)
    assert len(import_jobs(sandbox.base_url)) == 1  # the new job (the old one is gone)
    states = sorted(f.state.value for f in store.failures(run_id_of(second)))
    assert states == ["invalid"]
    assert len(list_emails(sandbox.base_url, list_id)) == 9


# ---- Klaviyo's shared rate limit, 429s that say 0, edge timeouts -------------------------------


async def test_used_up_rate_limit_ends_the_run_interrupted_and_resumable(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """Another integration takes the whole quota right after our import is accepted: the poll
    would wait past the budget, so the run stops, says when to retry, and resumes later."""
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, customers(20))

    def take_quota(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method == "POST" and response.status_code == 202:
            sandbox.app.limiter.quota_share = 1.0
        return response

    client = KlaviyoClient(
        sandbox.base_url,
        DEMO_KEY,
        transport=Proxy(after=take_quota),
        rate_limit_budget=0.5,
        backoff_base=0.01,
    )
    async with client:
        first, _ = await drain("customers", config, store, client=client)
    assert first.exit_code == ExitCode.INTERRUPTED
    assert first.error is not None
    assert "local time" in first.error and "klaviyo-tui run customers --resume" in first.error
    record = store.run(run_id_of(first))
    assert record is not None and record.status == "interrupted"
    assert store.resumable_run("customers") is not None
    sandbox.app.limiter.quota_share = 0.0  # the window passed
    second, _ = await drain("customers", config, store, resume=True)
    assert second.exit_code == ExitCode.OK, second.error
    assert second.counts[RowState.IMPORTED.value] == 20
    assert len(import_jobs(sandbox.base_url)) == 1
    assert len(list_emails(sandbox.base_url, list_id)) == 20


async def test_quota_shared_with_another_integration_still_delivers(
    tmp_path: Path, store: HistoryStore
) -> None:
    """`quota`: another integration uses 40 % of every window; our run waits its turn."""
    settings = SandboxSettings(rate_limits=True, job_delay=0.0, faults={"quota": 0.4})
    with SandboxServer(settings) as server:
        config, list_id = one_csv_export(tmp_path, server.base_url, customers(50))
        summary, _ = await drain("customers", config, store)
        assert summary.exit_code == ExitCode.OK, summary.error
        assert len(list_emails(server.base_url, list_id)) == 50


@pytest.mark.parametrize(("fault", "hit"), [("retry0", ("POST", 429)), ("524", ("POST", 524))])
async def test_retry0_and_524_still_confirm_every_row_once(
    fault: str, hit: tuple[str, int], tmp_path: Path, store: HistoryStore
) -> None:
    """`retry0`: 429s that say `Retry-After: 0`; `524`: the import POST takes effect but its
    answer is Cloudflare's timeout page. Either way each row is imported once, by one job."""
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={fault: 0.3}, seed=2)
    with SandboxServer(settings) as server:
        list_id = sandbox_retrying_list(server)
        config, _ = one_csv_export(tmp_path, server.base_url, customers(400), list_id=list_id)
        seen: list[tuple[str, int]] = []

        def record(request: httpx.Request, response: httpx.Response) -> httpx.Response:
            seen.append((request.method, response.status_code))
            return response

        client = KlaviyoClient(
            server.base_url,
            DEMO_KEY,
            transport=Proxy(after=record),
            backoff_base=0.01,
            max_retries=12,
        )
        async with client:
            summary, _ = await drain("customers", config, store, client=client)
        assert summary.exit_code == ExitCode.OK, summary.error
        assert hit in seen, f"the {fault} fault never hit (change the seed): {seen}"
        assert summary.counts[RowState.IMPORTED.value] == 400
        server.app.faults = FaultInjector({}, 0)
        assert len(import_jobs(server.base_url)) == 1  # adopted after a 524, never doubled
        assert len(list_emails(server.base_url, list_id)) == 400


def sandbox_retrying_list(server: SandboxServer) -> str:
    """A list created through faults that may answer 429, 524 (created anyway) and so on."""
    with sandbox_helpers.client(server.base_url) as c:
        for _ in range(50):
            r = c.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "L"}}})
            if r.status_code == 201:
                return str(r.json()["data"]["id"])
        calm = [item["id"] for item in sandbox_helpers._get(c, "/api/lists").json()["data"]]
    assert calm, "could not create a list through the faults"
    return str(calm[0])


# ---- reading the list back ----------------------------------------------------------------------


def removing_on_first_read(sandbox: SandboxServer, list_id: str, email: str) -> Hook:
    """Someone takes `email` out of the list (through the API) just before the run reads the
    list back: after the run confirmed it, before the verification sees it."""
    done: list[str] = []

    async def before(request: httpx.Request) -> httpx.Request:
        reading = request.method == "GET" and f"/api/lists/{list_id}/" in request.url.path
        if reading and not done:
            done.append(email)
            headers = sandbox_helpers.headers()
            async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as c:
                found = await c.get("/api/profiles", params={"filter": f'equals(email,"{email}")'})
                profile_id = found.json()["data"][0]["id"]
                gone = await c.request(
                    "DELETE",
                    f"/api/lists/{list_id}/relationships/profiles",
                    json={"data": [{"type": "profile", "id": profile_id}]},
                )
                assert gone.status_code == 204, gone.text
        return request

    return before


async def test_verify_full_agrees_with_the_list(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(250)
    rows[10]["email"] = "broken@"
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    summary, events = await drain("customers", config, store, verify="full")
    assert summary.exit_code == ExitCode.OK, summary.error
    assert summary.verification is not None
    assert summary.verification["checked"] == summary.verification["in_list"] == 249
    assert summary.verification["missing"] == 0
    assert summary.verification["members"] == 249
    notes = [e.message for e in events if isinstance(e, Notice)]
    assert any("reading them takes about" in n and "249 members" in n for n in notes)
    recorded = store.verification(run_id_of(summary))
    assert recorded is not None and (recorded.mode, recorded.missing) == ("full", 0)


async def test_verify_full_finds_a_member_removed_behind_our_back(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(120)
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    hook = removing_on_first_read(sandbox, list_id, "customer42@example.com")
    async with client_for(sandbox, Proxy(before=hook)) as client:
        summary, _ = await drain("customers", config, store, client=client, verify="full")
    assert summary.exit_code == ExitCode.PARTIAL
    assert summary.verification is not None
    assert (summary.verification["in_list"], summary.verification["missing"]) == (119, 1)
    assert summary.counts[RowState.NOT_IN_LIST.value] == 1
    assert summary.counts[RowState.IMPORTED.value] == 119
    assert summary.total_rows == 120
    (failure,) = failures_by_row(store, summary.run_id).values()
    assert (failure.row, failure.state) == (43, RowState.NOT_IN_LIST)
    assert list_id in failure.reason
    assert summary.rejects_path is not None and "not_in_list" in summary.rejects_path.read_text()
    recorded = store.verification(run_id_of(summary))
    assert recorded is not None and (recorded.checked, recorded.missing) == (120, 1)


async def test_verify_sample_looks_up_n_rows_and_finds_the_missing_one(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(150)
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    summary, _ = await drain("customers", config, store, verify="sample:20")
    assert summary.verification is not None
    assert summary.verification["mode"] == "sample:20"
    assert (summary.verification["checked"], summary.verification["missing"]) == (20, 0)
    assert summary.exit_code == ExitCode.OK

    with sandbox_helpers.client(sandbox.base_url) as c:
        second_list = sandbox_helpers.create_list(c, "Second")
    config, _ = one_csv_export(tmp_path, sandbox.base_url, rows[:30], list_id=second_list)
    hook = removing_on_first_read(sandbox, second_list, "customer7@example.com")
    lookups: list[str] = []

    async def counting(request: httpx.Request) -> httpx.Request | httpx.Response:
        if "relationships/profiles" in request.url.path and request.method == "GET":
            lookups.append(request.url.params["filter"])
        return await hook(request)

    async with client_for(sandbox, Proxy(before=counting)) as client:
        summary, _ = await drain("customers", config, store, client=client, verify="sample:100")
    assert summary.verification is not None
    assert (summary.verification["checked"], summary.verification["missing"]) == (30, 1)
    assert summary.counts[RowState.NOT_IN_LIST.value] == 1
    (failure,) = failures_by_row(store, summary.run_id).values()
    assert (failure.row, failure.value) == (8, "customer7@example.com")
    assert len(lookups) <= 1 + 2 * 5  # one call for the 30, then halving down to the one


async def test_a_warned_row_missing_from_the_list_has_one_final_state(
    tmp_path: Path, store: HistoryStore
) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, sms_regions=frozenset({"US"}))
    with SandboxServer(settings) as server:
        rows = customers(6)
        rows[2]["phone"] = GB_PHONE
        config, list_id = one_csv_export(tmp_path, server.base_url, rows, mapping=MAPPING)
        hook = removing_on_first_read(server, list_id, "customer2@example.com")
        async with client_for(server, Proxy(before=hook)) as client:
            summary, _ = await drain("customers", config, store, client=client, verify="full")
    assert summary.counts[RowState.IMPORTED_WITH_WARNINGS.value] == 0
    assert summary.counts[RowState.NOT_IN_LIST.value] == 1
    assert summary.counts[RowState.IMPORTED.value] == 5
    (failure,) = failures_by_row(store, summary.run_id).values()
    assert (failure.row, failure.state) == (3, RowState.NOT_IN_LIST)


async def test_a_cancelled_job_is_unconfirmed_and_resume_sends_its_batch_again(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """A proxy says the run's first job was cancelled, in both runs."""
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, customers(12))
    first_job: list[str] = []

    def cancel_first(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method == "POST" and response.status_code == 202 and not first_job:
            first_job.append(response.json()["data"]["id"])
        if not first_job or not is_job_read(request) or first_job[0] not in request.url.path:
            return response
        body = response.json()
        body["data"]["attributes"]["status"] = "cancelled"
        return with_json(response, body)

    proxy = Proxy(after=cancel_first)
    async with client_for(sandbox, proxy) as client:
        first, events = await drain("customers", config, store, client=client)
    assert first.counts[RowState.UNCONFIRMED.value] == 12
    (event,) = [e for e in events if isinstance(e, JobUnconfirmed)]
    assert "cancelled" in event.reason
    async with client_for(sandbox, Proxy(after=cancel_first)) as client:
        second, events = await drain("customers", config, store, client=client, resume=True)
    assert second.exit_code == ExitCode.OK, second.error
    assert second.counts[RowState.IMPORTED.value] == 12
    assert any(isinstance(e, Notice) and "cancelled job" in e.message for e in events)
    assert len(import_jobs(sandbox.base_url)) == 2
    assert len(list_emails(sandbox.base_url, list_id)) == 12
