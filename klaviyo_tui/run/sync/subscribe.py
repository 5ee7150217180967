"""Subscribe with consent: each row's consent time, the subscribe calls, and their confirmation.

Consent times come from their own light pass over the segments (email and consent columns,
segment filters applied) before the export's rows are read, joined to the rows by key hash: a
row without a usable past time is refused when `historical` is set (it is not sent at all, and
the rejects file says why). Times are ISO 8601; one without a time zone is read as UTC.

After the import, every row Klaviyo confirmed is subscribed (≤ 1,000 a call). The call answers
202 with nothing to poll, so each subscription is confirmed by reading the profiles back
(`GET /api/profiles?filter=any(email,[…])&additional-fields[profile]=subscriptions`, 100 a call)
until it shows SUBSCRIBED or the wait ends; the others end "subscription unconfirmed" and are
sent again by the next run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from klaviyo_tui.events import Notice, Phase, ProgressEvent, Waiting
from klaviyo_tui.input.filters import segment_filter
from klaviyo_tui.input.jsoncols import text
from klaviyo_tui.input.pipeline import CHUNK_ROWS, email_keys
from klaviyo_tui.input.sources import read_chunks
from klaviyo_tui.klaviyo import KlaviyoClient, RequestRejected
from klaviyo_tui.klaviyo.exceptions import InvalidSubscription
from klaviyo_tui.klaviyo.models import SubscriptionProfile
from klaviyo_tui.run.sync.hashing import Hasher
from klaviyo_tui.run.sync.state import SyncState
from klaviyo_tui.store.config import Export, Segment
from klaviyo_tui.store.sync_config import Subscribe

_NAT = np.iinfo(np.int64).min
_PER_CALL = 1_000
_ATTEMPTS = 3
_EXAMPLE = "an ISO 8601 time such as 2024-05-01T10:00:00Z"


@dataclass
class ConsentTimes:
    """Each key's consent time (ns since the epoch, UTC; `_NAT` when missing or unusable)."""

    index: SyncState  # keys, with positions into `times` as their "hashes"
    times: np.ndarray
    raw: dict[int, str] = field(default_factory=dict)  # first key half -> unusable text

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        found, idx = self.index.find(keys)
        out = np.full(len(keys), _NAT, np.int64)
        if found.any():
            out[found] = self.times[self.index.hashes[idx[found]].astype(np.int64)]
        return out


def phones_of(payloads: pa.Array) -> list[str | None]:
    """Each serialized profile's phone (the E.164 form it was sent with), for its subscription."""
    out: list[str | None] = []
    for payload in payloads.to_pylist():
        attrs = orjson.loads(payload).get("attributes") or {}
        phone = attrs.get("phone_number") if isinstance(attrs, dict) else None
        out.append(phone if isinstance(phone, str) and phone else None)
    return out


def _frames(segment: Segment, columns: list[str]) -> Iterator[pd.DataFrame]:
    compiled = segment_filter(segment)
    wanted = list(dict.fromkeys([*columns, *compiled.columns]))
    for df in read_chunks(segment, wanted, CHUNK_ROWS):
        yield compiled.apply(df)


def read_consent(
    export: Export, segments: list[Segment], column: str, hasher: Hasher
) -> ConsentTimes:
    """Runs in the reading thread: one pass over email and consent columns; last row wins."""
    keys: list[np.ndarray] = []
    times: list[np.ndarray] = []
    raw: dict[int, str] = {}
    for segment in segments:
        for df in _frames(segment, [export.mapping.email, column]):
            emails = email_keys(df[export.mapping.email])
            ok = emails.is_valid().to_numpy(zero_copy_only=False)
            if not ok.any():
                continue
            values = text(df[column]).to_pandas()[ok]
            parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
            ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            ns[parsed.isna().to_numpy()] = _NAT
            chunk_keys = hasher.keys(emails.filter(pa.array(ok)))
            bad = np.flatnonzero((ns == _NAT) & values.notna().to_numpy())
            for i in bad[: max(0, 10_000 - len(raw))]:
                raw[int(chunk_keys[i, 0])] = str(values.iloc[i])
            keys.append(chunk_keys)
            times.append(ns)
    if not keys:
        return ConsentTimes(SyncState.empty(), np.zeros(0, np.int64))
    all_keys, all_times = np.concatenate(keys), np.concatenate(times)
    order = np.lexsort((np.arange(len(all_keys)), all_keys[:, 1], all_keys[:, 0]))
    k = all_keys[order]
    last = np.ones(len(k), bool)  # the last row of each email wins, as in the export itself
    last[:-1] = (k[1:, 0] != k[:-1, 0]) | (k[1:, 1] != k[:-1, 1])
    kept = order[last]
    index = SyncState(all_keys[kept], np.arange(len(kept), dtype=np.uint64))
    return ConsentTimes(index, all_times[kept], raw)


def consent_problems(
    sub: Subscribe, times: np.ndarray, keys: np.ndarray, raw: dict[int, str], now_ns: int
) -> list[tuple[int, str, str]]:
    """(position, value, reason) of rows a historical subscription must refuse."""
    out = []
    for i in np.flatnonzero((times == _NAT) | (times > now_ns)):
        value = raw.get(int(keys[i, 0]), "")
        if times[i] == _NAT:
            what = f"{value!r} is not {_EXAMPLE}" if value else "it is empty"
            reason = (
                f"no consent time in column {sub.consented_at_column!r} ({what}); a historical "
                "subscription needs the time each customer consented"
            )
        else:
            value = datetime.fromtimestamp(int(times[i]) / 1e9, UTC).isoformat()
            reason = f"the consent time in column {sub.consented_at_column!r} is in the future"
        out.append((int(i), value, reason))
    return out


@dataclass(frozen=True, slots=True)
class SubRow:
    """One confirmed row to subscribe, and where it came from."""

    email: str
    phone: str | None
    consented_ns: int
    segment: str
    row: int


@dataclass
class Outcome:
    subscribed: list[SubRow] = field(default_factory=list)
    unconfirmed: list[tuple[SubRow, str]] = field(default_factory=list)


def _profile(sub: Subscribe, row: SubRow) -> SubscriptionProfile:
    when = None
    if sub.historical and row.consented_ns != _NAT:
        when = datetime.fromtimestamp(row.consented_ns / 1e9, UTC)
    return SubscriptionProfile(
        email=row.email,
        phone_number=row.phone if sub.sms else None,
        email_marketing=sub.email,
        sms_marketing=sub.sms and bool(row.phone),
        consented_at=when,
    )


def _subscribed(sub: Subscribe, row: SubRow, found: dict[str, Any] | None) -> bool:
    if found is None:
        return False

    def consent(channel: str) -> str | None:
        value = ((found or {}).get(channel) or {}).get("marketing") or {}
        return value.get("consent") if isinstance(value, dict) else None

    if sub.email and consent("email") != "SUBSCRIBED":
        return False
    return not (sub.sms and row.phone and consent("sms") != "SUBSCRIBED")


async def _submit(
    client: KlaviyoClient, list_id: str, sub: Subscribe, rows: list[SubRow], out: Outcome
) -> list[SubRow]:
    """Send one call's rows; rows Klaviyo refuses by pointer are left out and the rest resent."""
    current = rows
    for _ in range(_ATTEMPTS):
        try:
            profiles = [_profile(sub, r) for r in current]
            await client.subscribe_profiles(list_id, profiles, historical=sub.historical)
            return current
        except InvalidSubscription as error:
            out.unconfirmed += [(r, f"not subscribed: {error}") for r in current]
            return []
        except RequestRejected as error:
            named = {i: d for i, _, d in error.row_errors if i < len(current)}
            if not named or error.unattributed:
                out.unconfirmed += [
                    (r, f"Klaviyo refused the subscription: {error}") for r in current
                ]
                return []
            out.unconfirmed += [
                (current[i], f"Klaviyo refused the subscription: {d}") for i, d in named.items()
            ]
            current = [r for i, r in enumerate(current) if i not in named]
            if not current:
                return []
    out.unconfirmed += [(r, "Klaviyo kept refusing the subscription call") for r in current]
    return []


async def subscribe(
    client: KlaviyoClient,
    list_id: str,
    sub: Subscribe,
    rows: list[SubRow],
    emit: Callable[[ProgressEvent], None],
    wait_s: float,
) -> Outcome:
    """Subscribe `rows`, then read them back until each shows SUBSCRIBED or `wait_s` passes."""
    out = Outcome()
    if not rows:
        return out
    emit(Phase("subscribing", f"{len(rows):,} profiles to the list with consent"))
    sent: list[SubRow] = []
    for start in range(0, len(rows), _PER_CALL):
        sent += await _submit(client, list_id, sub, rows[start : start + _PER_CALL], out)
    pending: dict[str, list[SubRow]] = {}
    for row in sent:
        pending.setdefault(row.email.lower(), []).append(row)
    deadline = time.monotonic() + wait_s
    delay = 1.0
    while pending:
        found = await client.profile_subscriptions(list(pending))
        for email in list(pending):
            done = [r for r in pending[email] if _subscribed(sub, r, found.get(email))]
            out.subscribed += done
            left = [r for r in pending[email] if r not in done]
            if left:
                pending[email] = left
            else:
                del pending[email]
        if not pending or time.monotonic() + delay > deadline:
            break
        emit(Waiting(delay, f"waiting for Klaviyo to apply {len(pending):,} subscriptions"))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
    reason = (
        f"Klaviyo did not show the subscription within {wait_s:g}s: it may still be applying it, "
        "or the list uses double opt-in and the customer has not confirmed yet; the next run "
        "subscribes it again"
    )
    out.unconfirmed += [(r, reason) for rows_left in pending.values() for r in rows_left]
    if out.unconfirmed:
        emit(
            Notice(
                f"{len(out.unconfirmed):,} subscriptions not confirmed (see the rejects file)",
                level="warning",
            )
        )
    return out
