"""In-memory account state: lists, profiles, memberships, bulk import jobs and their errors.

Compact on purpose (the benchmark pushes millions of rows): a profile is one orjson blob in a
Python list, addressed by its position; indexes map email (lower-cased), phone and external_id
to that position; a list's members are a dict position -> slot plus append-only slot arrays.
Everything runs on the server's event-loop thread, so there are no locks.
"""

from __future__ import annotations

import random
import time
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_IDENTIFIERS = ("email", "phone_number", "external_id")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pack(data: dict[str, Any]) -> bytes:
    """Serialize a profile. The copy matters: orjson's own result keeps a large over-allocated
    buffer, which makes storing millions of them several times slower and bigger."""
    return memoryview(orjson.dumps(data)).tobytes()


def _new_profile(attrs: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A new profile's stored attributes: nulls dropped (bulk import ignores them), timestamps."""
    if None in attrs.values():
        attrs = {k: v for k, v in attrs.items() if v is not None}
    else:
        attrs = dict(attrs)
    for nested in ("location", "properties"):
        value = attrs.get(nested)
        if value is not None and None in value.values():
            attrs[nested] = {k: v for k, v in value.items() if v is not None}
    attrs["created"] = attrs["updated"] = stamp
    return attrs


def micros(ts: float) -> int:
    """Whole microseconds since the epoch: what ISO output shows, so filters compare exactly."""
    return round(ts * 1_000_000)


def iso_micros(us: int) -> str:
    return (_EPOCH + timedelta(microseconds=us)).isoformat(timespec="microseconds")


def iso(ts: float) -> str:
    """ISO-8601 in UTC with microseconds, the shape Klaviyo returns."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


@dataclass
class ListRec:
    id: str
    name: str
    created: float
    updated: float
    opt_in_process: str
    members: dict[int, int] = field(default_factory=dict)  # profile position -> slot
    order: list[int] = field(default_factory=list)  # slot -> profile position (append-only)
    joined: array = field(default_factory=lambda: array("q"))  # slot -> joined_group_at (µs)

    def add(self, pos: int, now: float) -> None:
        if pos not in self.members:
            self.members[pos] = len(self.order)
            self.order.append(pos)
            self.joined.append(micros(now))

    def slots(self, start: int, descending: bool) -> Iterator[int]:
        """Live slots from `start` (inclusive; for descending, exclusive upper bound)."""
        order, members = self.order, self.members
        rng = range(start - 1, -1, -1) if descending else range(start, len(order))
        for slot in rng:
            if members.get(order[slot]) == slot:
                yield slot


@dataclass
class Job:
    id: str
    created: float
    start_at: float
    done_at: float
    list_ids: list[str]
    total: int
    payload: list[dict[str, Any]] | None  # profile resource objects until processed
    fail_rows: frozenset[int]
    done: bool = False
    completed_count: int = 0
    failed_count: int = 0
    profile_positions: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def status(self, now: float) -> str:
        if self.done:
            return "complete"
        return "processing" if now >= self.start_at and now > self.created else "queued"


class Store:
    """All state of the one sandbox account."""

    def __init__(self, account_name: str, seed: int, job_delay: float) -> None:
        self.rng = random.Random(f"ids-{seed}")
        self.account_name = account_name
        self.account_id = self._alnum(6)
        self.job_delay = job_delay
        self.lists: dict[str, ListRec] = {}
        self.blobs: list[bytes] = []
        self.by_email: dict[str, int] = {}
        self.by_phone: dict[str, int] = {}
        self.by_external: dict[str, int] = {}
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []
        self.profile_prefix = "01" + "".join(self.rng.choice(_CROCKFORD) for _ in range(14))

    # ids ---------------------------------------------------------------------------------
    def _alnum(self, n: int) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(n))

    def _ulid(self, now: float) -> str:
        ms = int(now * 1000)
        head = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
        return head + "".join(self.rng.choice(_CROCKFORD) for _ in range(16))

    def profile_id(self, pos: int) -> str:
        return f"{self.profile_prefix}{pos:010d}"

    def position(self, profile_id: str) -> int | None:
        if len(profile_id) != 26 or not profile_id.startswith(self.profile_prefix):
            return None
        tail = profile_id[16:]
        if not tail.isdigit():
            return None
        pos = int(tail)
        return pos if pos < len(self.blobs) else None

    def profile(self, pos: int) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.blobs[pos])
        return result

    # lists -------------------------------------------------------------------------------
    def create_list(self, name: str, opt_in_process: str, now: float) -> ListRec:
        list_id = self._alnum(6)
        while list_id in self.lists:
            list_id = self._alnum(6)
        rec = ListRec(list_id, name, now, now, opt_in_process)
        self.lists[list_id] = rec
        return rec

    def delete_list(self, list_id: str) -> None:
        del self.lists[list_id]

    # jobs --------------------------------------------------------------------------------
    def create_job(
        self,
        profiles: list[dict[str, Any]],
        list_ids: list[str],
        fail_rows: frozenset[int],
        now: float,
    ) -> Job:
        job = Job(
            id=self._ulid(now),
            created=now,
            start_at=now + self.job_delay * 0.2,
            done_at=now + self.job_delay,
            list_ids=list_ids,
            total=len(profiles),
            payload=profiles,
            fail_rows=fail_rows,
        )
        self.jobs[job.id] = job
        self.pending.append(job)
        return job

    def tick(self, now: float | None = None) -> None:
        """Complete every due job, oldest first; each job is applied exactly once."""
        if not self.pending:
            return
        now = time.time() if now is None else now
        due = [j for j in self.pending if j.done_at <= now]
        if not due:
            return
        self.pending = [j for j in self.pending if j.done_at > now]
        for job in due:
            self._process(job, now)

    def _process(self, job: Job, now: float) -> None:
        payload = job.payload or []
        job.payload = None
        stamp = iso(now)
        lists = [rec for i in job.list_ids if (rec := self.lists.get(i)) is not None]
        missing = [i for i in job.list_ids if i not in self.lists]
        by_email, by_phone, by_ext = self.by_email, self.by_phone, self.by_external
        blobs = self.blobs
        fail_rows, positions = job.fail_rows, job.profile_positions
        now_us = micros(now)
        for i, resource in enumerate(payload):
            attrs = resource["attributes"]
            if fail_rows and i in fail_rows:
                self._row_error(job, attrs, "processing_error", "The profile failed to import.")
                continue
            if missing:
                self._row_error(job, attrs, "not_found", f"List {missing[0]} does not exist.")
                continue
            email, phone = attrs.get("email"), attrs.get("phone_number")
            ext = attrs.get("external_id")
            email_key = email.lower() if email else None
            if (
                resource.get("id") is None
                and (email_key is None or email_key not in by_email)
                and (phone is None or phone not in by_phone)
                and (ext is None or ext not in by_ext)
            ):  # fast path: a new profile
                pos = len(blobs)
                blobs.append(_pack(_new_profile(attrs, stamp)))
                if email_key is not None:
                    by_email[email_key] = pos
                if phone is not None:
                    by_phone[phone] = pos
                if ext is not None:
                    by_ext[ext] = pos
            else:
                result = self._upsert(attrs, resource.get("id"), stamp)
                if isinstance(result, str):
                    self._row_error(job, attrs, "invalid", result)
                    continue
                pos = result
            positions.append(pos)
            for rec in lists:
                members = rec.members
                if pos not in members:
                    members[pos] = len(rec.order)
                    rec.order.append(pos)
                    rec.joined.append(now_us)
        job.completed_count = len(positions)
        for rec in lists:
            rec.updated = now
        job.done = True

    def _row_error(self, job: Job, attrs: dict[str, Any], code: str, detail: str) -> None:
        job.failed_count += 1
        job.errors.append(
            {
                "type": "import-error",
                "id": str(uuid.uuid4()),
                "attributes": {
                    "code": code,
                    "title": "Profile import failed.",
                    "detail": detail,
                    "source": {"pointer": "/data/attributes"},
                    "original_payload": attrs,
                },
            }
        )

    def _upsert(self, attrs: dict[str, Any], profile_id: str | None, stamp: str) -> int | str:
        """Create or update one profile; return its position, or a reason it failed."""
        email = attrs.get("email")
        email_key = email.lower() if email else None
        phone = attrs.get("phone_number")
        ext = attrs.get("external_id")
        found: list[int] = []
        if profile_id is not None:
            pos = self.position(profile_id)
            if pos is None:
                return f"Profile {profile_id} does not exist."
            found.append(pos)
        for index, key in (
            (self.by_email, email_key),
            (self.by_phone, phone),
            (self.by_external, ext),
        ):
            if key is not None:
                hit = index.get(key)
                if hit is not None:
                    found.append(hit)
        if len(set(found)) > 1:
            return "The profile's identifiers belong to different existing profiles."
        if not found:
            pos = len(self.blobs)
            self.blobs.append(_pack(_new_profile(attrs, stamp)))
        else:
            pos = found[0]
            old = self.profile(pos)
            for (
                key
            ) in _IDENTIFIERS:  # identifiers replaced on this profile: drop stale index entries
                if attrs.get(key) is not None and old.get(key) not in (None, attrs[key]):
                    self._unindex(key, old[key])
            for k, v in attrs.items():
                if v is None:
                    continue
                if k in ("location", "properties") and isinstance(old.get(k), dict):
                    old[k].update((kk, vv) for kk, vv in v.items() if vv is not None)
                else:
                    old[k] = v
            old["updated"] = stamp
            self.blobs[pos] = _pack(old)
        if email_key is not None:
            self.by_email[email_key] = pos
        if phone is not None:
            self.by_phone[phone] = pos
        if ext is not None:
            self.by_external[ext] = pos
        return pos

    def _unindex(self, key: str, value: str) -> None:
        if key == "email":
            self.by_email.pop(value.lower(), None)
        elif key == "phone_number":
            self.by_phone.pop(value, None)
        else:
            self.by_external.pop(value, None)
