"""What a dry run says about sync work: calls and least time at Klaviyo's published limits."""

from __future__ import annotations

import math

from klaviyo_tui.klaviyo.pacing import OPERATIONS, least_seconds_for

MEMBERS_PER_READ = 100
IDS_PER_REMOVAL = 1_000
PROFILES_PER_SUBSCRIBE = 1_000
EMAILS_PER_READ_BACK = 100


def _seconds(op: str, calls: int) -> float:
    return least_seconds_for(OPERATIONS[op], calls)


def removal_plan(leavers: int, list_size: int | None) -> dict[str, object]:
    """Reading the members (only when someone may leave) and the removal calls."""
    if leavers == 0:
        return {"removals": 0, "member_reads": 0, "removal_calls": 0, "removal_seconds": 0.0}
    reads = math.ceil((list_size or leavers) / MEMBERS_PER_READ)
    calls = math.ceil(leavers / IDS_PER_REMOVAL)
    seconds = _seconds("get_profiles_for_list", reads) + _seconds(
        "remove_profiles_from_list", calls
    )
    return {
        "removals": leavers,
        "member_reads": reads,
        "removal_calls": calls,
        "removal_seconds": round(seconds, 1),
    }


def subscribe_plan(rows: int) -> dict[str, object]:
    calls = math.ceil(rows / PROFILES_PER_SUBSCRIBE)
    reads = math.ceil(rows / EMAILS_PER_READ_BACK)
    seconds = _seconds("bulk_subscribe_profiles", calls) + _seconds("get_profiles", reads)
    return {
        "subscriptions": rows,
        "subscribe_calls": calls,
        "read_back_calls": reads,
        "subscribe_seconds": round(seconds, 1),
    }
