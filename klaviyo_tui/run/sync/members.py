"""A mirror's list members, kept between runs, so removing a few leavers does not mean reading
the whole list again.

The sync state holds keyed hashes, never emails, so the profile ids of those who left the
segment come from the list's members: 100 a request at 700 a minute, 14 minutes for 1M members.
The first removal reads them all, as before, and keeps (keyed hash of the email -> profile id)
for every member plus the latest `joined_group_at` it saw. The next one reads only the members
who joined after that time (oldest first) and takes the leavers' ids from what it knows.
(After, not at or after: Klaviyo's times may be whole seconds, and the members of the last
second read would be read again by every run until someone new joins; one who joins in that
very second after the read is not known, and if they leave, the run reads the whole list.)
Before anything is removed on that basis, each leaver is checked against Klaviyo as it is now:
its profile must still exist with an email that hashes to the leaver's key (`GET /api/profiles`
by id) and still be a member (by that email): the same test the whole-list read makes. A leaver
it does not know, a profile gone or merged, or an email changed in Klaviyo sends the run back to
reading the whole list, which refreshes what is kept. So this only ever saves reads: it removes
exactly the profiles the whole-list read would have removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from klaviyo_tui.input.chunks import email_keys
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.klaviyo.exceptions import UnsearchableValue
from klaviyo_tui.run.sync.hashing import Hasher
from klaviyo_tui.run.sync.state import SyncState, keys_from
from klaviyo_tui.store.export_state import StoredMembers

#: Members hashed at once while reading (one call into the hashing kernels per page group).
_MEMBERS_AT_ONCE = 5_000


@dataclass(frozen=True)
class MemberMap:
    """List members by the keyed hash of their email: `index` holds the keys (sorted) with,
    as their "hash", the position of the member's profile id in `ids`."""

    index: SyncState
    ids: list[str]
    joined_until: datetime | None

    @classmethod
    def empty(cls) -> MemberMap:
        return cls(SyncState.empty(), [], None)

    @classmethod
    def of(cls, keys: np.ndarray, ids: list[str], joined_until: datetime | None) -> MemberMap:
        """From unsorted keys and their ids (the last of equal keys wins)."""
        index = SyncState.empty().merged(keys, np.arange(len(ids), dtype=np.uint64))
        return cls(index, ids, joined_until)

    @classmethod
    def stored(cls, found: StoredMembers | None, list_id: str) -> MemberMap:
        """What an earlier run kept for this list (empty for another list, or none)."""
        if found is None or found.list_id != list_id or not found.joined_until:
            return cls.empty()
        keys = keys_from(found.keys)
        if len(keys) != len(found.ids):
            return cls.empty()  # not what save() writes: read the whole list again
        index = SyncState(keys, np.arange(len(keys), dtype=np.uint64))
        return cls(index, found.ids, _instant(found.joined_until))

    def __len__(self) -> int:
        return len(self.index)

    def merged(self, newer: MemberMap) -> MemberMap:
        """These members updated with `newer`'s (a member read again takes its new id)."""
        offset = np.uint64(len(self.ids))
        index = self.index.merged(newer.index.keys, newer.index.hashes + offset)
        times = [t for t in (self.joined_until, newer.joined_until) if t is not None]
        return MemberMap(index, [*self.ids, *newer.ids], max(times) if times else None)

    def without(self, keys: np.ndarray) -> MemberMap:
        return MemberMap(self.index.without(keys), self.ids, self.joined_until)

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(mask of the keys known here, the profile ids of those, in order)."""
        found, at = self.index.find(keys)
        positions = self.index.hashes[at[found]].tolist()
        return found, [self.ids[p] for p in positions]

    def to_store(self, list_id: str) -> StoredMembers:
        ids = [self.ids[p] for p in self.index.hashes.tolist()]
        since = self.joined_until.isoformat() if self.joined_until is not None else None
        return StoredMembers(list_id, self.index.key_bytes(), ids, since)


def _instant(text: str | None) -> datetime | None:
    """`joined_group_at` as Klaviyo wrote it, as an aware datetime (None when unreadable)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


async def read_members(
    client: KlaviyoClient, list_id: str, hasher: Hasher, since: datetime | None = None
) -> MemberMap:
    """The list's members with an email (all, or those who joined after `since`)."""
    keys: list[np.ndarray] = []
    ids: list[str] = []
    latest: datetime | None = None
    page_ids: list[str] = []
    page_emails: list[str] = []

    def flush() -> None:
        if not page_ids:
            return
        normal = email_keys(pd.Series(page_emails, dtype=object))
        valid = normal.is_valid().to_numpy(zero_copy_only=False)
        keys.append(hasher.keys(normal.filter(valid)))
        ids.extend(i for i, ok in zip(page_ids, valid.tolist(), strict=True) if ok)
        page_ids.clear()
        page_emails.clear()

    async for member in client.list_members(list_id, joined_since=since):
        joined = _instant(member.joined)
        if joined is not None and (latest is None or joined > latest):
            latest = joined
        if member.email:
            page_ids.append(member.profile_id)
            page_emails.append(member.email)
        if len(page_ids) >= _MEMBERS_AT_ONCE:
            flush()
    flush()
    found = np.concatenate(keys) if keys else np.zeros((0, 2), np.uint64)
    return MemberMap.of(found, ids, latest if latest is not None else since)


async def still_members(
    client: KlaviyoClient, list_id: str, ids: list[str], keys: np.ndarray, hasher: Hasher
) -> tuple[list[str], np.ndarray] | str:
    """Of these profiles (the leavers' ids, aligned with their `keys`), those that Klaviyo still
    has with an email hashing to the very key, and that are still in the list. When any profile
    is gone or has another email now, why (the caller reads the whole list instead)."""
    emails = await client.profile_emails(ids)
    current = [emails.get(i) for i in ids]
    gone = sum(e is None for e in current)
    if gone:
        return f"{gone:,} of their profiles are gone from Klaviyo or have no email (merged?)"
    normal = email_keys(pd.Series(current, dtype=object))
    if normal.null_count or not np.array_equal(hasher.keys(normal), keys):
        return "a profile among them has another email in Klaviyo now"
    try:
        members = set(await client.list_members_by_email(list_id, [e for e in current if e]))
    except UnsearchableValue:
        return "an email among them cannot be looked up in a Klaviyo filter"
    in_list = np.array([i in members for i in ids], dtype=bool)
    return [i for i, ok in zip(ids, in_list.tolist(), strict=True) if ok], keys[in_list]
