"""Columnar fast path for bulk import jobs whose rows are all plain new profiles.

`bulk.check_row` and the per-row apply in `Store._process` cost ~10 µs a row in Python, which
made the sandbox cost more CPU than the exporter it serves. Most jobs (every benchmark job) are
plain: each row is `{"type": "profile", "attributes": {...}}` with a valid email, string fields,
optionally a phone and properties. `plain` settles such a job in a few C-level passes
(comprehensions, column regexes, one serialization); `apply_new` adds its rows in bulk (one blob
chunk) when none of them touches an existing profile or another row of the job.

Both only ever accept: a job they cannot vouch for in full goes through the per-row code, which
decides and explains (same errors, drops, conflicts and blobs);
tests/klaviyo/test_sandbox_fastpath.py checks that both paths agree.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, repeat
from operator import contains, itemgetter
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .blobs import Blobs
from .bulk import _STRING_FIELDS, EMAIL_RE, MAX_PROFILE_BYTES, phone_verdict
from .phones import country_code, surely_valid_lines

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .store import ListRec

_FIELDS = _STRING_FIELDS | {"properties"}
_ENVELOPE = len(orjson.dumps({"type": "profile", "attributes": {}})) - 2  # around the attributes
_get_attrs = itemgetter("attributes")
_get_type = itemgetter("type")
_get_email = itemgetter("email")


_LOOKAHEADS = ("(?=[^@]{1,64}@)", "(?=.{3,254}$)")


def _without_lookaheads(pattern: str) -> str:
    """EMAIL_RE without its two length lookaheads (`_emails_ok` checks them in bulk), for RE2
    (which has no lookarounds; its "$" is the end of the text only, never before a newline)."""
    body = pattern
    for lookahead in _LOOKAHEADS:
        assert lookahead in body
        body = body.replace(lookahead, "")
    assert body.startswith("^") and body.endswith("$") and "." not in body.replace("\\.", "")
    return body


_EMAIL_RE2 = _without_lookaheads(EMAIL_RE.pattern)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a 10,000-profile job allocates ~30,000 dicts and frees them again,
    and the collections they trigger (finding nothing: JSON has no cycles) cost as much as the
    work. Only postponed: collection resumes afterwards. The sandbox's work is synchronous, so
    a test process's other threads see at most a few milliseconds of it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Plain:
    """A plain job's columns: its rows' attributes serialized back to back in `data` (no
    nulls anywhere; row i is `data[starts[i]:ends[i]]` plus its closing brace), each row's
    email, phone_number and external_id (None when absent)."""

    data: bytes
    starts: array[int]
    ends: array[int]
    emails: list[str]
    phones: list[str | None]
    externals: list[str | None]

    def packed(self, i: int) -> bytes:
        """Row i's serialized attributes, as `blobs.pack_new` would write them without stamps."""
        return self.data[self.starts[i] : self.ends[i]] + b"}"

    def rows(self) -> list[dict[str, Any]]:
        """The profile resources again (the job keeps only the columns: the parsed body's
        dicts are freed before the GC resumes, so it never scans them)."""
        return [{"type": "profile", "attributes": a} for a in orjson.loads(self.data)]


def _row_spans(data: bytes, n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Where each of n rows lies in `data` (`orjson.dumps` of their attribute objects: "[",
    the rows joined by ",", "]"): from its "{" to before its closing brace. Rows meet at "},{";
    None when the rows' own text holds that too (a string, an array of objects), so that the
    boundaries are in doubt. A few numpy passes over the bytes, no object per row."""
    raw = np.frombuffer(data, np.uint8)
    opens = np.flatnonzero(raw == ord("{"))
    opens = opens[opens >= 3]
    seps = opens[(raw[opens - 1] == ord(",")) & (raw[opens - 2] == ord("}"))]
    if len(seps) != n - 1:
        return None
    last = len(data) - 2  # the last row's closing brace, before "]"
    starts = np.concatenate(([1], seps)).astype(np.int64)
    ends = np.concatenate((seps - 2, [last])).astype(np.int64)
    return starts, ends


def _emails_ok(emails: list[str]) -> bool:
    """EMAIL_RE matches every email (none holding a newline): RE2 (pyarrow compute) over the
    column, ~3 times faster than sre, then its lookaheads as bounds on the column (3 to 254
    characters, the first "@" after 1 to 64; the regex admits ASCII only, so bytes are
    characters). The column is built from one joined string: one C call, no object per row."""
    if not emails:
        return True
    joined = "\n".join(emails)
    if joined.count("\n") != len(emails) - 1:
        return False  # a newline inside an email
    try:
        column = pc.split_pattern(pa.array([joined], pa.string()), "\n").flatten()
    except (pa.ArrowInvalid, UnicodeEncodeError):  # not UTF-8 (lone surrogates): no email
        return False
    if not pc.all(pc.match_substring_regex(column, _EMAIL_RE2)).as_py():
        return False
    size = pc.min_max(pc.binary_length(column)).as_py()
    at = pc.min_max(pc.find_substring(column, "@")).as_py()
    return bool(size["min"] >= 3 and size["max"] <= 254 and at["min"] >= 1 and at["max"] <= 64)


def _phones_ok(phones: list[str], sms_regions: frozenset[str] | None) -> bool:
    """Every phone is one `bulk.phone_verdict` keeps (valid, in the SMS regions): the column
    in one pass for the common case (the first region of its country code), the rest (e.g.
    Jersey's numbers under +44) one by one."""
    if not phones:
        return True
    joined = "\n" + "\n".join(phones)
    if joined.count("\n") != len(phones):
        return False
    codes = {country_code(p) for p in {p[:4] for p in phones}}
    ccs = frozenset(cc for cc in codes if cc is not None)
    lines = surely_valid_lines(ccs, sms_regions) if len(ccs) == len(codes) else None
    rest = lines.sub("", joined) if lines is not None else joined
    return all(phone_verdict(p, sms_regions) is None for p in rest.split("\n") if p)


def plain(doc: Any, check_sizes: bool, sms_regions: frozenset[str] | None) -> Plain | None:
    """The job's columns when every row surely passes `bulk.check_row` with nothing dropped
    (and the size limit); None when any row needs the per-row check. Each pass over the rows
    costs (fresh dicts, cold caches), so there are as few as the checks allow."""
    try:
        rows = doc["data"]["attributes"]["profiles"]["data"]
        if type(rows) is not list or not rows:
            return None
        # len() fails on numbers and itemgetter on strings and lists: rows are dicts
        if set(map(len, rows)) != {2} or set(map(_get_type, rows)) != {"profile"}:
            return None  # type and attributes only: no id, no meta
        attrs: list[dict[str, Any]] = list(map(_get_attrs, rows))
        if set(map(type, attrs)) != {dict}:
            return None
        emails = list(map(_get_email, attrs))  # KeyError: a row without email
    except (KeyError, TypeError):
        return None
    shapes = set(map(tuple, attrs))
    if not all(_FIELDS.issuperset(shape) for shape in shapes):
        return None  # location, unknown keys: per row
    keys = {k for shape in shapes for k in shape}
    kinds = list(map(type, chain.from_iterable(map(dict.values, attrs))))
    if not set(kinds) <= {str, dict}:
        return None  # nulls and wrong types: per row
    props = [a["properties"] for a in attrs if "properties" in a] if "properties" in keys else []
    if not set(map(type, props)) <= {dict} or kinds.count(dict) != len(props):
        return None  # every dict is a properties object, and every properties object a dict
    if not _emails_ok(emails):
        return None
    none: list[str | None] = [None] * len(attrs)
    phones = [a.get("phone_number") for a in attrs] if "phone_number" in keys else none
    externals = [a.get("external_id") for a in attrs] if "external_id" in keys else none[:]
    if not _phones_ok([p for p in phones if p is not None], sms_regions):
        return None
    columns = (emails, phones, externals)
    data = orjson.dumps(attrs)  # each row as `blobs.pack_new` would when there are no nulls
    spans = _row_spans(data, len(attrs))
    if spans is None:
        return None
    if b"null" in data and any(map(contains, map(dict.values, props), repeat(None))):
        return None  # nulls in properties: stored without them, per row
    starts, ends = spans
    if check_sizes and int((ends - starts).max()) + 1 + _ENVELOPE > MAX_PROFILE_BYTES:
        return None
    return Plain(data, array("q", starts.tobytes()), array("q", ends.tobytes()), *columns)


def apply_new(
    cols: Plain,
    blobs: Blobs,
    indexes: tuple[dict[str, int], dict[str, int], dict[str, int]],
    lists: list[ListRec],
    stamps: bytes,
    now_us: int,
) -> list[int] | None:
    """Add every row as a new profile and list member, in row order, when no row matches an
    existing profile or another row of the job (then applying them one by one would do just
    this); return their positions, or None (nothing changed) to apply the job row by row."""
    by_email, by_phone, by_external = indexes
    n = len(cols.emails)
    start = len(blobs)
    positions = range(start, start + n)
    # each column's new entries as a small dict first: it finds duplicates within the job,
    # and updating an index from a dict reuses the hashes (no tuple per row)
    updates: list[tuple[dict[str, int], dict[str, int]]] = []
    keys: Sequence[str | None] = list(map(str.lower, cols.emails))
    columns = ((keys, by_email), (cols.phones, by_phone), (cols.externals, by_external))
    for values, index in columns:
        new: dict[str | None, int] = dict(zip(values, positions, strict=True))
        absent = values.count(None)  # "" is an external_id too: only None is absent
        if absent:
            del new[None]
        if len(new) != n - absent or not index.keys().isdisjoint(new):
            return None
        updates.append((index, cast("dict[str, int]", new)))
    blobs.extend_chunk(cols.data, cols.starts, cols.ends, stamps)
    for index, entries in updates:
        index.update(entries)
    for rec in lists:  # new profiles: members of no list yet
        slot = len(rec.order)
        rec.members.update(zip(positions, range(slot, slot + n), strict=True))
        rec.order.extend(positions)
        rec.joined.extend(array("q", [now_us]) * n)
    return list(positions)
