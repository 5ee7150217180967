"""The client's retry loop against httpx.MockTransport: backoff, 429 budgets, Cloudflare's 52x,
adopting the job of an ambiguous import attempt, and pacing to Klaviyo's RateLimit headers.

Clocks are fake (client_support.FakeClock) wherever a wait would be long, so nothing here
sleeps for real beyond a few milliseconds of backoff.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Notice, Retrying, Waiting
from klaviyo_tui.klaviyo import (
    Pacer,
    RateLimitedUntil,
    UnavailableError,
    UnexpectedResponse,
)
from klaviyo_tui.klaviyo.models import parse_job
from klaviyo_tui.klaviyo.pacing import OPERATIONS, parse_limit_header
from klaviyo_tui.klaviyo.submissions import BatchShape, SubmissionLedger, batch_shape
from klaviyo_tui.klaviyo.transport import RATE_LIMIT_WAIT_REASON
from tests.support.client import (
    FakeClock,
    Recorder,
    doc,
    err,
    job_obj,
    list_obj,
    make,
    queue,
    throttled,
)

JOBS = "/api/profile-bulk-import-jobs"


def import_body(count: int, list_id: str = "Y6nRLr") -> bytes:
    profiles = [{"type": "profile", "attributes": {"email": f"p{i}@x.com"}} for i in range(count)]
    return orjson.dumps(
        {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": profiles}},
                "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
            }
        }
    )


def iso(moment: datetime) -> str:
    return moment.isoformat()


# ---- ordinary retries --------------------------------------------------------------------------


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


@pytest.mark.parametrize("status", [520, 521, 522, 523, 524])
async def test_cloudflare_edge_errors_are_retried(status: int) -> None:
    edge = httpx.Response(status, text="<html>cloudflare</html>")
    rec = Recorder(queue(edge, doc({"data": [list_obj("AAAAA1", "a")]})))
    events: list[Any] = []
    async with make(rec, events) as k:
        assert len(await k.lists()) == 1
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert f"HTTP {status} (Cloudflare" in retry.reason


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


async def test_edge_errors_that_never_reached_klaviyo_are_not_ambiguous() -> None:
    """522 (Cloudflare could not connect) cannot have created the list: no look-up first."""
    rec = Recorder(queue(err(522, "edge"), doc({"data": list_obj("AAAAA9", "Fresh")}, 201)))
    async with make(rec) as k:
        assert (await k.create_list("Fresh")).id == "AAAAA9"
    assert [r.method for r in rec.requests] == ["POST", "POST"]


async def test_a_request_http_cannot_carry_is_not_retried() -> None:
    rec = Recorder(queue(httpx.LocalProtocolError("Too little data for declared Content-Length")))
    async with make(rec) as k:
        with pytest.raises(UnexpectedResponse, match="could not be sent"):
            await k.lists()
    assert len(rec.requests) == 1


# ---- 429: a time budget, not the retry cap -----------------------------------------------------


async def test_retry_after_is_honoured_and_reported() -> None:
    clock = FakeClock()
    rec = Recorder(queue(throttled(3), doc({"data": []})))
    events: list[Any] = []
    async with make(rec, events, clock=clock, sleep=clock.sleep) as k:
        await k.lists()
    (wait,) = [e for e in events if isinstance(e, Waiting)]
    assert wait.reason == RATE_LIMIT_WAIT_REASON
    assert 3.0 <= wait.seconds <= 3.5
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert retry.reason == "rate limit: Klaviyo asked to wait 3 s; retrying"
    assert sum(clock.waits) == pytest.approx(wait.seconds, abs=0.01)


async def test_429s_do_not_use_up_the_retry_cap() -> None:
    clock = FakeClock()
    answers = [throttled(1)] * 6 + [err(503, "down"), doc({"data": []})]
    rec = Recorder(queue(*answers))
    async with make(rec, max_retries=1, clock=clock, sleep=clock.sleep) as k:
        assert await k.lists() == []
    assert len(rec.requests) == 8  # six 429s and one 503 with a retry cap of 1


async def test_retry_after_zero_waits_at_least_a_second_with_jitter() -> None:
    clock = FakeClock()
    rec = Recorder(queue(*[throttled(0)] * 4, doc({"data": []})))
    events: list[Any] = []
    async with make(rec, events, clock=clock, sleep=clock.sleep) as k:
        await k.lists()
    waits = [e.seconds for e in events if isinstance(e, Waiting)]
    assert len(waits) == 4
    assert all(1.0 <= w <= 1.5 for w in waits)
    assert len(set(waits)) > 1  # jittered: clients told "0" do not all come back at once


async def test_429_without_retry_after_still_waits() -> None:
    clock = FakeClock()
    rec = Recorder(queue(throttled(None), doc({"data": []})))
    async with make(rec, clock=clock, sleep=clock.sleep) as k:
        await k.lists()
    assert sum(clock.waits) >= 1.0


async def test_the_429_budget_ends_the_request_resumable_with_a_local_time() -> None:
    clock = FakeClock()
    rec = Recorder(queue(throttled(2)))
    events: list[Any] = []
    before = datetime.now().astimezone()
    async with make(rec, events, clock=clock, sleep=clock.sleep, rate_limit_budget=5) as k:
        with pytest.raises(RateLimitedUntil) as info:
            await k.lists()
    assert len(rec.requests) == 3  # two waits of 2–2.5 s fit in 5 s; a third does not
    error = info.value
    assert isinstance(error, UnavailableError)
    assert error.exit_code == ExitCode.INTERRUPTED
    assert before + timedelta(seconds=1) <= error.retry_at <= before + timedelta(seconds=60)
    assert error.retry_at.strftime("%H:%M") in str(error)
    assert "shared with every app on this account" in str(error)
    assert error.hint


async def test_a_daily_cap_stops_at_once_and_says_until_when() -> None:
    rec = Recorder(lambda req: throttled(40000))
    async with make(rec) as k:
        with pytest.raises(RateLimitedUntil, match=r"creating a list for 11\.1 h, until ") as info:
            await k.create_list("Daily")
    assert len(rec.requests) == 1
    expected = datetime.now().astimezone() + timedelta(seconds=40000)
    assert abs((info.value.retry_at - expected).total_seconds()) < 60


# ---- an import POST that may have been accepted ------------------------------------------------


def jobs_listing(*jobs: dict[str, Any]) -> httpx.Response:
    return doc({"data": list(jobs), "links": {"next": None}})


def adopting_klaviyo(
    post_answers: list[httpx.Response | Exception], listed: list[dict[str, Any]]
) -> Recorder:
    posts = list(post_answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            item = posts.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        assert request.url.params["sort"] == "-created_at"
        return jobs_listing(*listed)

    return Recorder(handler)


def accepted(job_id: str, count: int) -> httpx.Response:
    return doc({"data": job_obj(job_id, "queued", total_count=count)}, 202)


async def test_ambiguous_import_adopts_the_job_it_created() -> None:
    soon = iso(datetime.now(UTC) + timedelta(seconds=1))
    old = iso(datetime.now(UTC) - timedelta(hours=1))
    listed = [
        job_obj("JOBOTHERSIZE", "queued", total_count=4, created_at=soon),
        job_obj("JOBOURS", "queued", total_count=3, created_at=soon)
        | {"relationships": {"lists": {"data": [{"type": "list", "id": "Y6nRLr"}]}}},
        job_obj("JOBOLD", "complete", total_count=3, created_at=old),
    ]
    rec = adopting_klaviyo([err(524, "timeout")], listed)
    events: list[Any] = []
    async with make(rec, events) as k:
        job = await k.submit_import(import_body(3))
    assert job.id == "JOBOURS"
    assert [r.method for r in rec.requests] == ["POST", "GET"]  # not sent twice
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("job JOBOURS" in n and "instead of sending" in n for n in notices)


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset"), err(502, "gw")]
)
async def test_ambiguous_import_without_its_job_is_sent_again(
    failure: httpx.Response | Exception,
) -> None:
    old = iso(datetime.now(UTC) - timedelta(hours=1))
    listed = [job_obj("JOBOLD", "complete", total_count=3, created_at=old)]
    rec = adopting_klaviyo([failure, accepted("JOBNEW", 3)], listed)
    events: list[Any] = []
    async with make(rec, events) as k:
        job = await k.submit_import(import_body(3))
    assert job.id == "JOBNEW"
    assert [r.method for r in rec.requests] == ["POST", "GET", "POST"]
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("sending the batch again (an import is an idempotent upsert)" in n for n in notices)


async def test_a_job_claimed_by_an_earlier_submission_is_never_adopted() -> None:
    soon = iso(datetime.now(UTC) + timedelta(seconds=1))
    listed = [job_obj("JOBFIRST", "queued", total_count=3, created_at=soon)]
    rec = adopting_klaviyo(
        [accepted("JOBFIRST", 3), err(524, "t"), accepted("JOBSECOND", 3)], listed
    )
    async with make(rec) as k:
        first = await k.submit_import(import_body(3))
        second = await k.submit_import(import_body(3))
    assert (first.id, second.id) == ("JOBFIRST", "JOBSECOND")
    assert [r.method for r in rec.requests] == ["POST", "POST", "GET", "POST"]


async def test_two_fitting_jobs_cannot_be_told_apart_so_the_batch_is_sent_again() -> None:
    soon = iso(datetime.now(UTC) + timedelta(seconds=1))
    listed = [job_obj(f"JOB{i}", "queued", total_count=3, created_at=soon) for i in range(2)]
    rec = adopting_klaviyo([err(524, "t"), accepted("JOBNEW", 3)], listed)
    async with make(rec) as k:
        assert (await k.submit_import(import_body(3))).id == "JOBNEW"


def test_ledger_refuses_to_adopt_while_a_same_size_upload_is_open_or_lost() -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    jobs = [parse_job(job_obj("J1", "queued", total_count=3, created_at=iso(datetime.now(UTC))))]
    ledger = SubmissionLedger()
    ours, other = ledger.open(3), ledger.open(3)
    assert ledger.pick(ours, BatchShape(3, None), since, jobs) is None  # `other` may own J1
    ledger.close(other, None, maybe_accepted=True)  # failed after maybe reaching Klaviyo
    assert ledger.pick(ours, BatchShape(3, None), since, jobs) is None  # its job may be J1
    fresh = SubmissionLedger()
    mine = fresh.open(3)
    fresh.close(fresh.open(5), "J9")  # other sizes do not matter
    picked = fresh.pick(mine, BatchShape(3, "Y6nRLr"), since, jobs)
    assert picked is not None and picked.id == "J1"
    assert "J1" in fresh.claimed
    assert fresh.pick(mine, BatchShape(3, None), since, jobs) is None  # claimed once only


def test_batch_shape_reads_count_and_list() -> None:
    assert batch_shape(import_body(7, "AbC123")) == BatchShape(7, "AbC123")
    assert batch_shape(b"not json") is None
    assert batch_shape(b'{"data": {"attributes": {}}}') is None


# ---- pacing ------------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("header", "windows"),
    [
        ("75, 75;w=1, 750;w=60", {1: 75, 60: 750}),  # live: binding quota first, then windows
        ("10;w=1, 150;w=60", {1: 10, 60: 150}),  # the sandbox
        ("1;w=1, 2;w=60, 225;w=86400", {1: 1, 60: 2, 86400: 225}),
        ("5", {}),
        ("x;w=1, 3;w=y, 4;q=1", {}),
        ("", {}),
        (None, {}),
    ],
)
def test_ratelimit_limit_header_formats(header: str | None, windows: dict[int, int]) -> None:
    assert parse_limit_header(header) == windows


async def test_pacer_adapts_down_to_the_servers_limits_and_never_above_the_tier() -> None:
    pacer = Pacer(clock=FakeClock())
    op = OPERATIONS["bulk_import_profiles"]
    pacer.observe(op, "3", "1", "3, 3;w=1, 20;w=60")
    assert pacer.limits(op) == (3, 20)
    pacer.observe(op, "99", "1", "100, 100;w=1, 1000;w=60")
    assert pacer.limits(op) == (op.burst, op.steady)
    pacer.observe(op, "99", "1", "5;w=86400")  # only a daily window: nothing to change
    assert pacer.limits(op) == (op.burst, op.steady)


async def test_client_paces_to_a_lower_limit_klaviyo_reports() -> None:
    clock = FakeClock()
    low = {"RateLimit-Limit": "2, 2;w=1, 5;w=60", "RateLimit-Remaining": "1"}
    rec = Recorder(lambda r: doc({"data": []}, headers=low))
    events: list[Any] = []
    async with make(rec, events, clock=clock, sleep=clock.sleep) as k:
        for _ in range(6):
            await k.lists()
    waits = [e for e in events if isinstance(e, Waiting)]
    assert waits and all("(2/s, 5/min)" in e.reason for e in waits)
    assert clock.now - 1000.0 >= 60.0  # the sixth call waited for the minute window


async def test_a_wait_that_jobs_in_flight_meet_together_is_told_once() -> None:
    # The minute is full and 8 jobs ask for a slot at once: one wait, one line (a 3M-row run
    # printed "waiting 37.0s: pacing ..." 8 times, and the TUI summed 8 times the seconds).
    clock = FakeClock()
    gate = asyncio.Event()

    async def nap(seconds: float) -> None:
        await gate.wait()  # every caller stays in its wait: they overlap, as in a run

    told: list[float] = []
    pacer = Pacer(clock=clock, sleep=nap, on_wait=lambda s, r: told.append(s))
    op = OPERATIONS["bulk_import_profiles"]
    pacer._bucket(op).sent.extend(clock.now - 30 + i * 0.1 for i in range(150))
    callers = [asyncio.create_task(pacer.acquire(op)) for _ in range(8)]
    for _ in range(5):
        await asyncio.sleep(0)
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    assert told == [pytest.approx(31.0)]  # when the first of the 150 leaves the sliding 61 s
