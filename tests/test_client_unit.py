"""Unit tests of the Klaviyo client against httpx.MockTransport: headers, parsing, retries, errors.

The loopback integration tests (tests/test_client_sandbox.py) cover the same operations against
the real sandbox; these pin edge cases the sandbox does not produce (null links, odd hosts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Retrying, Waiting
from klaviyo_tui.klaviyo import (
    AuthError,
    InvalidBaseURL,
    InvalidConfiguration,
    KlaviyoClient,
    KlaviyoError,
    NotFoundError,
    Pacer,
    RequestRejected,
    ScopeError,
    UnavailableError,
    UnexpectedResponse,
    check_base_url,
    mask_key,
)
from klaviyo_tui.klaviyo.pacing import OPERATIONS

KEY = "pk_abcdefghijklmnopqrstuvwxyz0123456789"
BASE = "https://a.klaviyo.com"
JSONAPI = "application/vnd.api+json"

Handler = Callable[[httpx.Request], httpx.Response]


def doc(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": JSONAPI, **(headers or {})}
    )


def err(status: int, detail: str, **source: str) -> httpx.Response:
    return doc(
        {
            "errors": [
                {"id": "x", "status": str(status), "code": "c", "title": "t", "detail": detail}
                | ({"source": source} if source else {})
            ]
        },
        status,
    )


def list_obj(i: str, name: str) -> dict[str, Any]:
    return {
        "type": "list",
        "id": i,
        "attributes": {"name": name, "created": "2026-05-01T10:00:00Z", "updated": None},
    }


def job_obj(i: str, status: str = "queued", **attrs: Any) -> dict[str, Any]:
    return {
        "type": "profile-bulk-import-job",
        "id": i,
        "attributes": {"status": status, "created_at": "2026-07-20T14:03:11.512000+00:00"} | attrs,
    }


class Recorder:
    """A MockTransport that records requests and answers from a handler (or a queue of answers)."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def queue(*answers: httpx.Response | Exception) -> Handler:
    items = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def make(rec: Recorder, events: list[Any] | None = None, **kw: Any) -> KlaviyoClient:
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("max_retries", 3)
    return KlaviyoClient(
        BASE,
        KEY,
        transport=rec.transport,
        on_event=(events.append if events is not None else None),
        seed=1,
        **kw,
    )


# ---- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://a.klaviyo.com",
        "https://a.klaviyo.com/",
        "http://127.0.0.1:8123",
        "http://127.5.0.1:80",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_base_url_accepted(url: str) -> None:
    assert not check_base_url(url).endswith("/")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://a.klaviyo.com", "https://"),
        ("http://10.0.0.5:8000", "loopback"),
        ("http://127.0.0.1.evil.example", "https://"),
        ("ftp://a.klaviyo.com", "https://"),
        ("https://user:pw@a.klaviyo.com", "password"),
        ("https://a.klaviyo.com?x=1", "query"),
        ("not a url", ""),
    ],
)
def test_base_url_refused(url: str, words: str) -> None:
    with pytest.raises(InvalidBaseURL) as info:
        KlaviyoClient(url, KEY)
    assert words in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE
    assert KEY not in str(info.value)


def test_key_masked_everywhere() -> None:
    assert mask_key(KEY) == "pk_…6789"
    client = KlaviyoClient(BASE, KEY)
    assert KEY not in repr(client)
    assert "pk_…6789" in repr(client)
    with pytest.raises(AuthError):
        KlaviyoClient(BASE, "pk_with space")
    with pytest.raises(InvalidConfiguration):
        KlaviyoClient(BASE, KEY, revision="latest")


async def test_headers_and_timeouts_on_every_request() -> None:
    rec = Recorder(lambda r: doc({"data": [], "links": {"next": None}}))
    async with make(rec, timeout=httpx.Timeout(5.0, connect=2.0)) as k:
        await k.lists()
        with pytest.raises(UnexpectedResponse):
            await k.submit_import(b'{"data": {}}')
    get, post = rec.requests
    for r in (get, post):
        assert r.headers["authorization"] == f"Klaviyo-API-Key {KEY}"
        assert r.headers["revision"] == "2026-07-15"
        assert r.headers["accept"] == JSONAPI
        timeout = r.extensions["timeout"]
        assert timeout["connect"] == 2.0
        assert timeout["read"] == 5.0
    assert "content-type" not in get.headers
    assert post.headers["content-type"] == JSONAPI
    assert post.content == b'{"data": {}}'


# ---- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("end", [{"next": None}, {}, {"next": ""}, None])
async def test_pagination_stops_on_null_absent_or_empty_next(end: dict[str, Any] | None) -> None:
    pages = {
        None: {
            "data": [list_obj("AAAAA1", "one")],
            "links": {"next": "https://elsewhere.example/api/lists?page%5Bcursor%5D=p2"},
        },
        "p2": {"data": [list_obj("AAAAA2", "two")]} | ({"links": end} if end is not None else {}),
    }
    rec = Recorder(lambda r: doc(pages[r.url.params.get("page[cursor]")]))
    async with make(rec) as k:
        lists = await k.lists()
    assert [lst.id for lst in lists] == ["AAAAA1", "AAAAA2"]
    assert lists[0].created is not None
    assert lists[0].updated is None
    # The next link named another host; the client stayed on its own origin (the key stays home).
    assert {r.url.host for r in rec.requests} == {"a.klaviyo.com"}


async def test_lists_by_name_filters_and_checks_exact_name() -> None:
    rec = Recorder(lambda r: doc({"data": [list_obj("AAAAA1", "VIP"), list_obj("B", "VIP 2")]}))
    async with make(rec) as k:
        found = await k.lists("VIP")
        weird = await k.lists('say "hi" it\'s')
    assert [lst.id for lst in found] == ["AAAAA1"]
    assert rec.requests[0].url.params["filter"] == 'equals(name,"VIP")'
    assert weird == []
    assert "filter" not in rec.requests[1].url.params  # unquotable: filtered client-side


async def test_job_parsed_leniently() -> None:
    body = {
        "data": job_obj(
            "01J3Y8ZQ6W2XH1M4T7V5B0C9DA",
            "PROCESSING",
            total_count="5000",
            completed_count=None,
            failed_count=4.0,
            started_at="garbage",
        )
        | {"relationships": {"lists": {"data": [{"type": "list", "id": "Y6nRLr"}]}}}
    }
    rec = Recorder(lambda r: doc(body))
    async with make(rec) as k:
        job = await k.get_job("01J3Y8ZQ6W2XH1M4T7V5B0C9DA")
    assert (job.status, job.total_count, job.completed_count, job.failed_count) == (
        "processing",
        5000,
        0,
        4,
    )
    assert job.started_at is None
    assert job.created_at is not None
    assert job.list_ids == ("Y6nRLr",)
    assert job.running


async def test_submit_without_job_id_is_an_error() -> None:
    rec = Recorder(lambda r: doc({"data": {"type": "profile-bulk-import-job"}}, 202))
    async with make(rec) as k:
        with pytest.raises(UnexpectedResponse, match="no job id"):
            await k.submit_import(b"{}")


async def test_bad_ids_never_reach_the_network() -> None:
    rec = Recorder(lambda r: doc({}))
    async with make(rec) as k:
        for bad in ["", "a/b", "..", "x?y", "a b"]:
            with pytest.raises(InvalidConfiguration):
                await k.get_list(bad)
            with pytest.raises(InvalidConfiguration):
                await k.get_job(bad)
    assert rec.requests == []


# ---- errors ------------------------------------------------------------------------------------


async def test_400_row_pointers_and_no_retry() -> None:
    body = {
        "errors": [
            {
                "status": 400,
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "x is not a valid email address.",
                "source": {"pointer": "/data/attributes/profiles/data/3/attributes/email"},
            },
            {
                "status": "400",
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "bad list",
                "source": {"pointer": "/data/relationships/lists/data/0/id"},
            },
        ]
    }
    rec = Recorder(lambda r: doc(body, 400))
    async with make(rec) as k:
        with pytest.raises(RequestRejected) as info:
            await k.submit_import(b"{}")
    assert len(rec.requests) == 1
    assert info.value.row_errors == [(3, "email", "x is not a valid email address.")]
    assert [e.detail for e in info.value.unattributed] == ["bad list"]
    assert {e.status for e in info.value.errors} == {400}
    assert info.value.exit_code == ExitCode.INPUT


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (err(401, "bad key"), AuthError, "Klaviyo rejected the API key (pk_…6789)"),
        (err(403, "nope"), ScopeError, "lacks the scope lists:read"),
        (err(404, "gone"), NotFoundError, "list AAAAA1 does not exist in this account"),
        (err(405, "method"), RequestRejected, "method"),
        (err(400, f"revision {KEY} unknown", parameter="revision"), InvalidConfiguration, "rev"),
    ],
)
async def test_error_mapping(answer: httpx.Response, kind: type[KlaviyoError], words: str) -> None:
    rec = Recorder(lambda r: answer)
    async with make(rec) as k:
        with pytest.raises(kind) as info:
            await k.get_list("AAAAA1")
    assert words in str(info.value)
    assert KEY not in str(info.value)
    assert len(rec.requests) == 1  # never retried


async def test_server_text_echoing_the_key_is_scrubbed() -> None:
    rec = Recorder(lambda r: err(400, f"key {KEY} is odd"))
    async with make(rec) as k:
        with pytest.raises(RequestRejected) as info:
            await k.lists()
    assert KEY not in str(info.value)
    assert "pk_…6789" in str(info.value)
    assert all(KEY not in e.detail for e in info.value.errors)


# ---- retries -----------------------------------------------------------------------------------


async def test_retries_5xx_html403_and_resets_then_succeeds() -> None:
    html = httpx.Response(403, text="<html>challenge</html>", headers={"cf-mitigated": "challenge"})
    rec = Recorder(
        queue(
            err(503, "down"),
            html,
            httpx.RemoteProtocolError("peer closed"),
            doc({"data": [list_obj("AAAAA1", "a")]}),
        )
    )
    events: list[Any] = []
    async with make(rec, events, max_retries=5) as k:
        assert len(await k.lists()) == 1
    reasons = [e.reason for e in events if isinstance(e, Retrying)]
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [1, 2, 3]
    assert "HTTP 503" in reasons[0]
    assert "Klaviyo's edge refused the request (HTML 403); retrying" in reasons[1]
    assert "reset" in reasons[2]


async def test_retry_after_is_honoured_and_reported() -> None:
    rec = Recorder(queue(_throttled(0.3), doc({"data": []})))
    events: list[Any] = []
    async with make(rec, events) as k:
        await k.lists()
    waits = [e for e in events if isinstance(e, Waiting)]
    assert waits
    assert waits[0].seconds >= 0.3
    assert waits[0].reason.startswith("rate limit: Klaviyo asked to wait 0.3 s")


def _throttled(seconds: float) -> httpx.Response:
    r = err(429, f"Request was throttled. Expected available in {seconds} seconds.")
    r.headers["Retry-After"] = str(seconds)
    return r


async def test_retries_run_out_with_a_clear_message() -> None:
    rec = Recorder(queue(httpx.ReadTimeout("slow")))
    events: list[Any] = []
    async with make(rec, events, max_retries=2, timeout=httpx.Timeout(7.0, connect=1.0)) as k:
        with pytest.raises(UnavailableError) as info:
            await k.get_job("01J3Y8ZQ6W2XH1M4T7V5B0C9DA")
    assert len(rec.requests) == 3
    assert "did not answer within 7 s" in str(info.value)
    assert info.value.exit_code == ExitCode.UNAVAILABLE


async def test_create_list_after_ambiguous_failure_looks_before_posting_again() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return err(502, "bad gateway")
        return doc({"data": [list_obj("AAAAA9", "Fresh")]})

    rec = Recorder(handler)
    async with make(rec) as k:
        lst = await k.create_list("Fresh")
    assert lst.id == "AAAAA9"
    assert [r.method for r in rec.requests] == ["POST", "GET"]


# ---- polling -----------------------------------------------------------------------------------


async def test_poll_many_jobs_reads_the_listing_and_fetches_only_the_unlisted() -> None:
    ids = ["J1", "J2", "J3", "J4"]

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/profile-bulk-import-jobs":
            assert request.url.params["sort"] == "-created_at"
            assert request.url.params["page[size]"] == "100"
            listed = [
                job_obj("J1", "processing"),
                job_obj("OTHER", "queued"),
                job_obj("J2", "complete", total_count=10, completed_count=9, failed_count=1),
                job_obj("J3", "complete", total_count=10, completed_count=10),
            ]
            return doc({"data": listed})
        jid = path.rsplit("/", 1)[1]
        return doc({"data": job_obj(jid, "complete", total_count=10, completed_count=10)})

    rec = Recorder(handler)
    async with make(rec) as k:
        jobs = await k.poll_jobs(ids)
        few = await k.poll_jobs(["J2"])
    assert list(jobs) == ids
    assert jobs["J1"].running
    assert all(jobs[i].finished for i in ids[1:])
    assert jobs["J2"].failed_count == 1  # counts come from the listing itself
    paths = [r.url.path for r in rec.requests]
    assert paths.count("/api/profile-bulk-import-jobs") == 1
    assert "/api/profile-bulk-import-jobs/J4" in paths  # not listed: fetched on its own
    assert "/api/profile-bulk-import-jobs/J2" in paths[-1:]  # the single-id poll
    assert not {"/api/profile-bulk-import-jobs/J1", "/api/profile-bulk-import-jobs/J3"} & set(paths)
    assert few["J2"].completed_count == 10


# ---- pacing ------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


async def test_pacer_keeps_burst_and_steady_windows() -> None:
    clock = FakeClock()
    waited: list[tuple[float, str]] = []
    pacer = Pacer(clock=clock, sleep=clock.sleep, on_wait=lambda s, r: waited.append((s, r)))
    op = OPERATIONS["bulk_import_profiles"]
    sends = []
    for _ in range(160):
        await pacer.acquire(op)
        sends.append(clock.now)
    for i in range(len(sends) - 10):  # never 11 sends within the burst window
        assert sends[i + 10] - sends[i] >= 1.0
    for i in range(len(sends) - 150):  # never 151 within a minute
        assert sends[i + 150] - sends[i] >= 60.0
    assert sends[149] - sends[0] < 20  # but it does not crawl either
    assert any("150/min" in r for _, r in waited)


async def test_pacer_blocks_on_ratelimit_remaining_zero() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    op = OPERATIONS["get_lists"]
    await pacer.acquire(op)
    pacer.observe(op, "0", "7")
    pacer.observe(op, "junk", "junk")
    await pacer.acquire(op)
    assert clock.waits == [pytest.approx(7.0)]
    pacer.observe(op, "12, 12;w=1", "1")  # draft-IETF style: remaining left, nothing to wait for
    await pacer.acquire(op)
    assert len(clock.waits) == 1


async def test_a_daily_cap_ends_the_call_instead_of_stalling() -> None:
    r = err(429, "Request was throttled. Expected available in 40000 seconds.")
    r.headers["Retry-After"] = "40000"
    rec = Recorder(lambda req: r)
    async with make(rec) as k:
        with pytest.raises(UnavailableError, match=r"creating a list for 11\.1 h"):
            await k.create_list("Daily")
    assert len(rec.requests) == 1


async def test_a_request_http_cannot_carry_is_not_retried() -> None:
    rec = Recorder(queue(httpx.LocalProtocolError("Too little data for declared Content-Length")))
    async with make(rec) as k:
        with pytest.raises(UnexpectedResponse, match="could not be sent"):
            await k.lists()
    assert len(rec.requests) == 1
