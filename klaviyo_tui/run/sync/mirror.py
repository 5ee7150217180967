"""Mirror: remove from the list the profiles this tool added that left the segment.

Safety rules, in order:
- Only keys in the export's state are candidates: profiles this tool added to this list. Members
  added by anyone else are never touched, and a member whose email is in the segment never is.
- The segment is read in full before anything is sent. A run whose removals would pass the
  export's limits (`max_removal_ratio` of the list, default 10 %, and `max_removals`) or would
  leave none of the segment (an empty source, a filter gone wrong) is refused before the first
  import job, exit code 2, unless `--allow-mass-removal`.
- Profile ids come from reading the list's members (`list_members`, 100 a call, L tier: about
  70,000 members a minute) and hashing their emails with the same keyed hash; only when there
  is someone to remove.
- Every removal request (≤ 1,000 ids, 10/s 150/min) is journaled before the first is sent and
  marked done after Klaviyo's answer. A resumed run sends only requests not done, minus any
  profile whose email is back in the segment. A request killed between Klaviyo's answer and
  the journal is sent again; removing a non-member is a no-op.
- Removal takes the profile off the list only: its consent and the profile itself stay.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from klaviyo_tui.events import Notice, Phase, ProgressEvent
from klaviyo_tui.input.pipeline import email_keys
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.sync.hashing import Hasher
from klaviyo_tui.run.sync.options import REMOVAL_REASON
from klaviyo_tui.run.sync.state import SyncState, keys_from
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.sync_config import SyncSettings

PER_REQUEST = 1_000
_MEMBERS_AT_ONCE = 5_000


def refusal(
    export: str,
    leavers: int,
    list_size: int | None,
    known: int,
    segment_empty: bool,
    settings: SyncSettings,
) -> str | None:
    """Why removing `leavers` profiles must not happen (None: within the limits)."""
    if leavers == 0:
        return None
    if segment_empty:
        return (
            f"the mirror run of export {export!r} would remove all {leavers:,} profiles it "
            "added to the list, because the segment has no rows with a valid email (an empty "
            "source or a filter that matches nothing?); nothing was sent"
        )
    size = list_size if list_size is not None else known
    allowed = math.floor(settings.max_removal_ratio * size)
    share = f"{leavers / size:.1%}" if size else "all"
    if leavers > allowed:
        return (
            f"the mirror run of export {export!r} would remove {leavers:,} of the list's "
            f"{size:,} members ({share}), more than max_removal_ratio "
            f"{settings.max_removal_ratio:g} allows ({allowed:,}); nothing was sent"
        )
    if settings.max_removals is not None and leavers > settings.max_removals:
        return (
            f"the mirror run of export {export!r} would remove {leavers:,} profiles, more than "
            f"max_removals ({settings.max_removals:,}); nothing was sent"
        )
    return None


async def _match(
    client: KlaviyoClient, list_id: str, leavers: SyncState, hasher: Hasher
) -> tuple[list[str], np.ndarray]:
    """Profile ids (and keys) of the list's members whose email hashes to a leaver's key."""
    ids: list[str] = []
    keys: list[np.ndarray] = []
    page_ids: list[str] = []
    page_emails: list[str] = []

    def flush() -> None:
        if not page_ids:
            return
        normal = email_keys(pd.Series(page_emails, dtype=object))
        valid = normal.is_valid().to_numpy(zero_copy_only=False)
        hashed = hasher.keys(normal.filter(valid))
        found, _ = leavers.find(hashed)
        member_ids = [i for i, ok in zip(page_ids, valid, strict=True) if ok]
        ids.extend(member_ids[j] for j in np.flatnonzero(found))
        keys.append(hashed[found])
        page_ids.clear()
        page_emails.clear()

    async for member in client.list_members(list_id):
        if member.email:
            page_ids.append(member.profile_id)
            page_emails.append(member.email)
        if len(page_ids) >= _MEMBERS_AT_ONCE:
            flush()
    flush()
    return ids, (np.concatenate(keys) if keys else np.zeros((0, 2), np.uint64))


async def remove(
    *,
    client: KlaviyoClient,
    store: HistoryStore,
    run_id: int,
    list_id: str,
    leavers: SyncState,
    present: Callable[[np.ndarray], np.ndarray],
    hasher: Hasher,
    emit: Callable[[ProgressEvent], None],
) -> int:
    """Plan (journal) and send the removals of this run, or finish a resumed run's; returns how
    many profiles were removed by this run in all."""
    journal = await asyncio.to_thread(store.removals, run_id)
    if not journal:
        if len(leavers) == 0:
            return 0
        emit(
            Phase(
                "removing",
                f"reading list {list_id}'s members to find the {len(leavers):,} profiles that "
                "left the segment",
            )
        )
        ids, keys = await _match(client, list_id, leavers, hasher)
        if not ids:
            emit(Notice("none of the profiles that left the segment is still in the list"))
            return 0
        planned = [
            (ids[s : s + PER_REQUEST], np.ascontiguousarray(keys[s : s + PER_REQUEST]).tobytes())
            for s in range(0, len(ids), PER_REQUEST)
        ]
        await asyncio.to_thread(store.removals_planned, run_id, planned)
        journal = await asyncio.to_thread(store.removals, run_id)
        emit(Notice(f"removing {len(ids):,} profiles that left the segment from the list"))
    removed = 0
    for record in journal:
        if record.state == "done":
            removed += len(record.profile_ids)
            continue
        keys = keys_from(record.keys)
        back = present(keys)  # never remove a profile whose email is in the segment now
        ids = [i for i, b in zip(record.profile_ids, back, strict=True) if not b]
        if back.any():
            kept = np.ascontiguousarray(keys[~back]).tobytes()
            await asyncio.to_thread(store.removal_kept, run_id, record.batch_no, ids, kept)
        await asyncio.to_thread(store.removal_state, run_id, record.batch_no, "sending")
        if ids:
            await client.remove_from_list(list_id, ids)
        await asyncio.to_thread(store.removal_state, run_id, record.batch_no, "done")
        removed += len(ids)
        emit(Notice(f"removed {len(ids):,} profiles: {REMOVAL_REASON}"))
    return removed
