"""Mirror: remove from the list the profiles this tool added that left the segment.

Safety rules, in order:
- Only keys in the export's state are candidates: profiles this tool added to this list. Members
  added by anyone else are never touched, and a member whose email is in the segment never is.
  Nor is one that another export of the same list (in the config) has confirmed: that export
  still sends it, and as an unchanged row it would never add it back (`others_keys`).
- The segment is read in full before anything is sent. A run whose removals would pass the
  export's limits (`max_removal_ratio` of the list, default 10 %, and `max_removals`) or would
  leave none of the segment (an empty source, a filter gone wrong) is refused before the first
  import job, exit code 2, unless `--allow-mass-removal`.
- Profile ids come from reading the list's members (`list_members`, 100 a call, L tier: about
  70,000 members a minute) and hashing their emails with the same keyed hash; only when there
  is someone to remove. The next run reads only who joined since, when every leaver checks
  out against Klaviyo as it is now (members.py).
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

from klaviyo_tui.events import Notice, Phase, ProgressEvent
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.sync.hashing import Hasher
from klaviyo_tui.run.sync.members import MemberMap, read_members, still_members
from klaviyo_tui.run.sync.options import REMOVAL_REASON, same_place
from klaviyo_tui.run.sync.settle import settle
from klaviyo_tui.run.sync.state import SyncState, keys_from
from klaviyo_tui.store.config import Config, Export
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.sync_config import SyncSettings

PER_REQUEST = 1_000


def same_list(config: Config, export: Export) -> tuple[str, ...]:
    """The config's other exports to this export's list in the same connection."""
    return tuple(
        e.name
        for e in config.exports.values()
        if e.name != export.name
        and e.list_id == export.list_id
        and e.connection == export.connection
    )


def others_keys(store: HistoryStore, others: list[str], basis: dict[str, object]) -> np.ndarray:
    """The keys that these other exports confirmed in the same list of the same account (their
    state with the runs not merged into it yet): blocks, call it in a thread."""
    found = [np.zeros((0, 2), np.uint64)]
    for name in others:
        state, stored = settle(store, name, but=None, persist=False)
        if stored is not None and same_place(stored, basis):
            found.append(state.keys)
    return np.concatenate(found)


def kept_notice(kept: int, others: list[str]) -> str:
    names = ", ".join(repr(n) for n in others)
    return (
        f"{kept:,} profile(s) that left the segment stay in the list: another export of it "
        f"({names}) sends them too"
    )


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


async def _find(
    client: KlaviyoClient,
    store: HistoryStore,
    export: str,
    list_id: str,
    leavers: SyncState,
    hasher: Hasher,
    emit: Callable[[ProgressEvent], None],
) -> tuple[list[str], np.ndarray]:
    """Profile ids (and keys) of the list's members whose email hashes to a leaver's key: from
    the members an earlier run read plus those who joined since, when every leaver checks out
    (members.py), else from reading the whole list. Keeps what it read for the next run."""
    kept = MemberMap.stored(await asyncio.to_thread(store.sync_members, export), list_id)
    count = f"the {len(leavers):,} profiles that left the segment"
    if len(kept) and kept.joined_until is not None:
        emit(
            Phase(
                "removing",
                f"reading who joined list {list_id} since the last mirror run, to find {count}",
            )
        )
        members = kept.merged(await read_members(client, list_id, hasher, kept.joined_until))
        found, ids = members.find(leavers.keys)
        unknown = int((~found).sum())
        checked = (
            await still_members(client, list_id, ids, leavers.keys, hasher)
            if not unknown
            else f"{unknown:,} of them are not among the members read before"
        )
        if not isinstance(checked, str):
            await _keep(store, export, list_id, members.without(leavers.keys))
            return checked
        emit(Notice(f"of the profiles to remove, {checked}: reading the whole list"))
    emit(Phase("removing", f"reading list {list_id}'s members to find {count}"))
    members = await read_members(client, list_id, hasher)
    found, ids = members.find(leavers.keys)
    keys = leavers.keys[found]
    await _keep(store, export, list_id, members.without(keys))
    return ids, keys


async def _keep(store: HistoryStore, export: str, list_id: str, members: MemberMap) -> None:
    """What the next run starts from: the members as read, less those this run removes."""
    await asyncio.to_thread(store.save_sync_members, export, members.to_store(list_id))


async def remove(
    *,
    client: KlaviyoClient,
    store: HistoryStore,
    run_id: int,
    export: str,
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
        ids, keys = await _find(client, store, export, list_id, leavers, hasher, emit)
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
