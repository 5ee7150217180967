"""The pacer reads the steady window's reset from Klaviyo's headers (klaviyo/pacing.py).

Checked against the sandbox's own fixed-window limiter (the real counting code, driven by a fake
clock): the pacer never causes a 429 whatever the windows' phase, and once a reset is known it
resumes when Klaviyo's minute ends instead of a full minute after its own first send.
"""

from __future__ import annotations

import pytest

from klaviyo_tui.klaviyo.pacing import OPERATIONS, Pacer
from klaviyo_tui.sandbox.error_responses import ApiError
from klaviyo_tui.sandbox.limits import RateLimiter
from klaviyo_tui.sandbox.operations import OPERATIONS as SANDBOX_OPERATIONS
from tests.support.client import FakeClock

OP = OPERATIONS["bulk_import_profiles"]
SERVER_OP = next(o for o in SANDBOX_OPERATIONS if o.operation_id == "bulk_import_profiles")


async def _run(jobs: int, phase: float, latency: float, read_headers: bool) -> list[float]:
    """Send `jobs` requests through the pacer to a fixed-window limiter whose minute starts
    `phase` seconds before our first send; each answer arrives `latency` later. Returns the
    send times; a 429 fails the test."""
    clock = FakeClock()
    clock.now = 6000.0 + phase  # the limiter's windows start at multiples of 60
    limiter = RateLimiter(enabled=True)
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    sends = []
    for _ in range(jobs):
        await pacer.acquire(OP)
        sent_at = pacer.now()
        sends.append(sent_at)
        try:
            headers = limiter.check(SERVER_OP, sent_at + latency / 2)
        except ApiError as error:  # pragma: no cover - the failure being tested for
            pytest.fail(f"429 at send {len(sends)}: {error}")
        if read_headers:
            clock.now += latency  # the answer comes back; later sends wait for the pacer only
            pacer.observe(
                OP,
                headers["RateLimit-Remaining"],
                headers["RateLimit-Reset"],
                headers["RateLimit-Limit"],
                sent_at,
            )
    return sends


@pytest.mark.parametrize("phase", [0.0, 0.3, 17.0, 44.9, 59.5])
@pytest.mark.parametrize("latency", [0.0, 0.4])
async def test_no_429_whatever_the_windows_phase(phase: float, latency: float) -> None:
    sends = await _run(320, phase, latency, read_headers=True)
    assert len(sends) == 320


async def test_a_known_reset_resumes_at_the_end_of_klaviyos_minute() -> None:
    # Our first send 10.3 s into Klaviyo's minute: the minute fills (150 sends) before it ends,
    # and the last answers name the steady window, which ends 49.7 s after our first send.
    sliding = await _run(151, 10.3, 0.05, read_headers=False)
    informed = await _run(151, 10.3, 0.05, read_headers=True)
    assert sliding[150] - sliding[0] >= 61.0  # the sliding minute waits out a whole minute
    assert 49.7 <= informed[150] - informed[0] < 52.0  # job 151 goes as Klaviyo's minute ends
    assert informed[149] - informed[0] < 22.0  # the minute's 150 themselves go at full pace


async def test_without_a_send_time_the_reset_only_blocks_at_zero() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    for _ in range(150):
        await pacer.acquire(OP)
    pacer.observe(OP, "3", "5", "150, 10;w=1, 150;w=60")  # no sent_at: nothing learned
    start = clock.now
    await pacer.acquire(OP)
    assert clock.now - start > 40  # the sliding minute still rules


async def test_a_refused_call_gives_its_slot_back() -> None:
    # Five calls refused with 429 (a server that fell behind saw them bunched in one second)
    # take no place in Klaviyo's windows. Were their slots kept, the first minute would hold 145
    # accepted jobs and 298 jobs would need a third minute; given back, they fit in two.
    clock = FakeClock()
    clock.now = 6000.0  # the limiter's minute starts with our first send
    limiter = RateLimiter(enabled=True)
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    accepted: list[float] = []
    refusals = 5
    while len(accepted) < 298:
        await pacer.acquire(OP)
        sent_at = pacer.now()
        if refusals and len(accepted) >= 20:
            refusals -= 1
            pacer.refused(OP, sent_at)
            pacer.block(OP, 1.0)
            continue
        headers = limiter.check(SERVER_OP, sent_at)
        accepted.append(sent_at)
        pacer.observe(
            OP,
            headers["RateLimit-Remaining"],
            headers["RateLimit-Reset"],
            headers["RateLimit-Limit"],
            sent_at,
        )
    assert sum(1 for t in accepted if t < 6060.0) == 150
    assert accepted[-1] < 6120.0, f"the last job went out at +{accepted[-1] - 6000:.1f} s"


def test_refused_forgets_one_reservation_at_or_before_the_send() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    bucket = pacer._bucket(OP)
    bucket.sent.extend([1.0, 2.0, 3.0])
    pacer.refused(OP, 2.5)
    assert list(bucket.sent) == [1.0, 3.0]


@pytest.mark.parametrize("phase", [0.0, 10.3, 26.9])
async def test_every_minute_after_a_known_reset_is_sent_without_a_stall(phase: float) -> None:
    # Klaviyo's minutes are fixed, so one reset places all of them. The answers to a minute's
    # last sends name the next minute's reset while calls are still left in this one: those must
    # go at once, not wait for the sliding minute of the minute before (a 3M-row run waited 31 s
    # for its last 4 jobs that way). So within a minute sends follow each other at the burst
    # pace, and every minute after the first takes its 150 (or what is left). (A first minute
    # that never fills names no reset: its phases are not among these.)
    sends = await _run(298, phase, 0.05, read_headers=True)
    start = sends[0] - phase  # where Klaviyo's minute began
    minutes: dict[int, list[float]] = {}
    for s in sends:
        minutes.setdefault(int((s - start) // 60), []).append(s)
    for k, times in minutes.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps, default=0.0) < 2.0, (k, round(max(gaps), 1))
    left = 298 - len(minutes[0])
    for k in sorted(minutes)[1:]:
        assert len(minutes[k]) == min(150, left), (k, len(minutes[k]))
        left -= len(minutes[k])


async def test_a_short_block_does_not_commit_a_caller_to_the_sliding_minute() -> None:
    # The minute's 150 are out and Klaviyo's burst window said "0 left" (a 1 s block) when the
    # next job asks for a slot; the answer naming the minute's reset arrives a moment later. The
    # job must go when that minute ends, not when the sliding minute allows: it reserved the
    # sliding slot at once and a 3M-row run waited 43 s more for its second minute.
    clock = FakeClock()
    first = clock.now
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer._bucket(OP).sent.extend(first + i * 0.1 for i in range(150))
    clock.now = first + 15.2
    pacer.block(OP, 1.0)
    answered = False

    async def nap(seconds: float) -> None:
        nonlocal answered
        if not answered:  # the answer to the minute's last send: none left, reset in 30 s
            answered = True
            pacer.observe(OP, "0", "30", "150, 10;w=1, 150;w=60", clock.now - 0.1)
        await clock.sleep(seconds)

    pacer._sleep = nap
    asked = clock.now
    await pacer.acquire(OP)
    assert clock.now - asked < 32.0, f"went {clock.now - asked:.1f} s later (sliding: 45.8)"
