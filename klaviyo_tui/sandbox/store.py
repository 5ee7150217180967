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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from klaviyo_tui.sandbox.blobs import Blobs, new_profile, pack, pack_new, stamps
from klaviyo_tui.sandbox.fastpath import Plain, apply_new, gc_paused

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_IDENTIFIERS = ("email", "phone_number", "external_id")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(ts: float) -> int:
    """Whole microseconds since the epoch: what ISO output shows, so filters compare exactly."""
    return round(ts * 1_000_000)


def iso_micros(us: int) -> str:
    return (_EPOCH + timedelta(microseconds=us)).isoformat(timespec="microseconds")


def iso(ts: float) -> str:
    """ISO-8601 in UTC with microseconds, the shape Klaviyo returns."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Conflict:
    """Why a row cannot be applied: an import error's code, detail and field."""

    code: str
    detail: str
    field: str | None


@dataclass
class ListRec:
    id: str
    name: str
    created: float
    updated: float
    opt_in_process: str
    members: dict[int, int] = field(default_factory=dict)  # profile position -> slot
    order: list[int] = field(default_factory=list)  # slot -> profile position (append-only)
    joined: array[int] = field(default_factory=lambda: array("q"))  # slot -> joined_group_at (µs)

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
    drop_phone: frozenset[int] = frozenset()  # rows whose invalid phone is silently ignored
    fault: str | None = None  # "stuck" or "badstatus" (faults.py)
    plain: Plain | None = None  # the payload's columns, when fastpath.py vouched for every row
    done: bool = False
    completed_count: int = 0
    failed_count: int = 0
    profile_positions: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def status(self, now: float) -> str:
        if self.done:
            return {"stuck": "processing", "badstatus": "failed"}.get(self.fault or "", "complete")
        return "processing" if now >= self.start_at and now > self.created else "queued"


class Store:
    """All state of the one sandbox account."""

    def __init__(self, account_name: str, seed: int, job_delay: float) -> None:
        self.rng = random.Random(f"ids-{seed}")
        self.account_name = account_name
        self.account_id = self._alnum(6)
        self.job_delay = job_delay
        self.lists: dict[str, ListRec] = {}
        self.blobs = Blobs()
        self.by_email: dict[str, int] = {}
        self.by_phone: dict[str, int] = {}
        self.by_external: dict[str, int] = {}
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []
        self._applied_at = 0.0  # when the last job applied completed (never goes back)
        self.deferred: list[tuple[float, Callable[[float], None]]] = []  # (due, effect)
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
        drop_phone: frozenset[int] = frozenset(),
        fault: str | None = None,
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
            drop_phone=drop_phone,
            fault=fault,
        )
        self.jobs[job.id] = job
        self.pending.append(job)
        return job

    def defer(self, due: float, effect: Callable[[float], None]) -> None:
        """Run `effect(now)` once `due` has passed (subscription jobs have no resource)."""
        self.deferred.append((due, effect))

    def tick(self, now: float | None = None) -> None:
        """Complete every due job, oldest first; each job is applied exactly once."""
        if not self.pending and not self.deferred:
            return
        now = time.time() if now is None else now
        if self.deferred:
            ready = [e for e in self.deferred if e[0] <= now]
            if ready:
                self.deferred = [e for e in self.deferred if e[0] > now]
                for _due, effect in ready:
                    effect(now)
        due = [j for j in self.pending if j.done_at <= now]
        if not due:
            return
        self.pending = [j for j in self.pending if j.done_at > now]
        with gc_paused():
            for job in due:
                # its profiles join (and change) when it completed, as its completed_at says,
                # not when a request next came in: jobs done apart join apart (joined_group_at)
                self._applied_at = max(job.done_at, self._applied_at)
                self._process(job, self._applied_at)

    def _process(self, job: Job, now: float) -> None:
        payload = job.payload or []
        plain, job.payload, job.plain = job.plain, None, None
        if job.fault == "badstatus":  # nothing is applied; the job reports `failed`
            job.done = True
            return
        stamp = iso(now)
        stamped = stamps(stamp)
        lists = [rec for i in job.list_ids if (rec := self.lists.get(i)) is not None]
        missing = [i for i in job.list_ids if i not in self.lists]
        by_email, by_phone, by_ext = self.by_email, self.by_phone, self.by_external
        blobs = self.blobs
        fail_rows, positions, drop_phone = job.fail_rows, job.profile_positions, job.drop_phone
        now_us = micros(now)
        if plain is not None:
            added = None
            if not fail_rows and not missing and not drop_phone:
                indexes = (by_email, by_phone, by_ext)
                added = apply_new(plain, blobs, indexes, lists, stamped, now_us)
            if added is None:
                payload = plain.rows()  # row by row after all
            else:
                positions.extend(added)
        for i, resource in enumerate(payload):
            sent = attrs = resource["attributes"]
            if fail_rows and i in fail_rows:
                self._row_error(job, sent, "processing_error", "The profile failed to import.")
                continue
            if missing:
                self._row_error(job, sent, "not_found", f"List {missing[0]} does not exist.")
                continue
            if drop_phone and i in drop_phone:
                attrs = {k: v for k, v in attrs.items() if k != "phone_number"}
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
                blobs.append(pack_new(attrs, stamped))
                if email_key is not None:
                    by_email[email_key] = pos
                if phone is not None:
                    by_phone[phone] = pos
                if ext is not None:
                    by_ext[ext] = pos
            else:
                result = self.upsert(attrs, resource.get("id"), stamp)
                if isinstance(result, Conflict):
                    self._row_error(job, sent, result.code, result.detail, result.field)
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

    def _row_error(
        self, job: Job, attrs: dict[str, Any], code: str, detail: str, field: str | None = None
    ) -> None:
        job.failed_count += 1
        job.errors.append(
            {
                "type": "import-error",
                "id": str(uuid.uuid4()),
                "attributes": {
                    "code": code,
                    "title": "Profile import failed.",
                    "detail": detail,
                    "source": {"pointer": "/data/attributes" + (f"/{field}" if field else "")},
                    "original_payload": attrs,
                },
            }
        )

    def resolve(self, attrs: dict[str, Any], profile_id: str | None) -> int | Conflict | None:
        """The existing profile a row means (None: a new one), or why it cannot be applied.

        No silent merges: the row is its `id`, else its email (new or existing); a phone_number
        or external_id that already belongs to a *different* profile is a conflict. Stricter
        than verified live behaviour. A profile that has no email may gain one (nobody is lost).
        """
        target: int | None = None
        if profile_id is not None:
            target = self.position(profile_id)
            if target is None:
                return Conflict("invalid", f"Profile {profile_id} does not exist.", None)
        email = attrs.get("email")
        if email:
            hit = self.by_email.get(email.lower())
            if hit is not None and target is not None and hit != target:
                return self._conflict("email", email, hit)
            target = hit if target is None else target
        for name, index in (("phone_number", self.by_phone), ("external_id", self.by_external)):
            value = attrs.get(name)
            hit = index.get(value) if value is not None else None
            if hit is None or hit == target:
                continue
            if target is not None or (email and self.profile(hit).get("email") is not None):
                return self._conflict(name, str(value), hit)
            target = hit
        return target

    def _conflict(self, field: str, value: str, other: int) -> Conflict:
        return Conflict(
            "duplicate_profile",
            f"The {field} {value} already belongs to a different profile "
            f"({self.profile_id(other)}); the sandbox does not merge profiles.",
            field,
        )

    def upsert(self, attrs: dict[str, Any], profile_id: str | None, stamp: str) -> int | Conflict:
        """Create or update one profile; return its position, or the conflict."""
        found = self.resolve(attrs, profile_id)
        if isinstance(found, Conflict):
            return found
        email = attrs.get("email")
        email_key = email.lower() if email else None
        phone = attrs.get("phone_number")
        ext = attrs.get("external_id")
        if found is None:
            pos = len(self.blobs)
            self.blobs.append(pack(new_profile(attrs, stamp)))
        else:
            pos = found
            old = self.profile(pos)
            for key in _IDENTIFIERS:  # identifiers replaced on this profile: drop stale entries
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
            self.blobs[pos] = pack(old)
        if email_key is not None:
            self.by_email[email_key] = pos
        if phone is not None:
            self.by_phone[phone] = pos
        if ext is not None:
            self.by_external[ext] = pos
        return pos

    def save(self, pos: int, data: dict[str, Any]) -> None:
        self.blobs[pos] = pack(data)

    def _unindex(self, key: str, value: str) -> None:
        if key == "email":
            self.by_email.pop(value.lower(), None)
        elif key == "phone_number":
            self.by_phone.pop(value, None)
        else:
            self.by_external.pop(value, None)
