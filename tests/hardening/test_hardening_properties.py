"""Property tests over generated input, beyond the per-module ones in test_batching/test_mapping/
test_pipeline: Klaviyo's real batch limits with realistic payload sizes; row-level validation
against an oracle built from the careful libraries on mixed, messy columns; and the whole
pipeline + packer on two segments with cross-segment duplicates, where every input row must end
in exactly one place (a batch or the rejects) and every body must be valid JSON within limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.batching import MAX_BYTES, MAX_PROFILES, Batch, BatchPacker
from klaviyo_tui.input.mapping import (
    MAX_PROFILE_BYTES,
    ValidatedChunk,
    careful_email,
    careful_phone,
    validate_chunk,
)
from klaviyo_tui.input.pipeline import iter_validated
from klaviyo_tui.store.config import Export, Mapping, Segment

KLAVIYO_MAX_BODY = 5 * 1024 * 1024
KLAVIYO_MAX_PROFILES = 10_000  # literal: the packer's own constant could drift

# ---- generated values -----------------------------------------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Zs")), min_size=0, max_size=12
)
_PAD = st.sampled_from(["", " ", "  ", "\t"])
_EMAILS = st.one_of(
    st.sampled_from(
        [
            "ada@example.com",
            "ADA@Example.COM",
            "bob@example.org",
            "user@bücher.de",
            "用户@例子.广告",
            "zoë@example.com",
            "x@localhost",
            "bad@",
            "two@@x.com",
            "a" * 65 + "@example.com",
            "first.last+tag@sub.example.co.uk",
            "",
            '=HYPERLINK("http://x","y")',
        ]
    ),
    st.builds(
        lambda s, d: f"{s}@{d}.com",
        st.from_regex(r"[a-z0-9._+-]{1,8}", fullmatch=True),
        st.from_regex(r"[a-z]{1,6}", fullmatch=True),
    ),
    _TEXT,
)
_PHONES = st.one_of(
    st.sampled_from(["", "+1 415 555 0123", "(415) 555-0199", "12", "+44 20 7946 0018", "n/a"]),
    st.from_regex(r"\+?[0-9 ()-]{0,14}", fullmatch=True),
)
_PROPS = st.one_of(
    _TEXT,
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["true", "FALSE", "2024-01-02", "2024-01-02 10:11:12", "007", "1.50"]),
)


@st.composite
def rows(draw: st.DrawFn, max_size: int = 40) -> list[dict[str, str]]:
    n = draw(st.integers(1, max_size))
    out = []
    for _ in range(n):
        out.append(
            {
                "email": draw(_PAD) + draw(_EMAILS) + draw(_PAD),
                "phone": draw(_PHONES),
                "name": draw(_PAD) + draw(_TEXT) + draw(_PAD),
                "score": draw(_PROPS),
            }
        )
    return out


MAPPING = Mapping(email="email", phone_number="phone", first_name="name", properties=("score",))


def expected_verdict(row: dict[str, str], region: str = "US") -> str | None:
    """The oracle: the careful libraries' verdict for one row (None when valid)."""
    email = row["email"].strip()
    if not email:
        return "email"
    if careful_email(email)[0] is None:
        return "email"
    phone = row["phone"].strip()
    if phone and careful_phone(phone, region)[0] is None:
        return "phone"
    return None


def check_json_value(raw: str, value: object) -> None:
    stripped = raw.strip()
    if isinstance(value, bool):
        assert stripped.lower() == str(value).lower()
    elif isinstance(value, int | float):
        assert float(stripped) == value
    else:
        assert value in (stripped, stripped.replace(" ", "T", 1))


# ---- validation against the oracle ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(rows(), st.sampled_from(["drop_field", "reject_row"]))
def test_validation_matches_the_careful_libraries_row_by_row(
    data: list[dict[str, str]], policy: str
) -> None:
    df = pd.DataFrame(data, dtype=object)
    df.index = pd.RangeIndex(1, len(df) + 1)
    df = df.map(lambda v: v if v.strip() else None)  # what a CSV reader gives for blanks
    chunk = validate_chunk(df, MAPPING, default_region="US", segment="s", on_invalid_field=policy)
    rejected = {r.row: r for r in chunk.rejects}
    warned = {w.row: w for w in chunk.warnings}
    assert sorted([*chunk.rows, *rejected]) == list(range(1, len(data) + 1))  # a partition
    assert sorted(warned) == [r for r, w in zip(chunk.rows, chunk.warned, strict=True) if w]
    for i, row in enumerate(data, start=1):
        verdict = expected_verdict({k: v or "" for k, v in row.items()})
        if verdict == "phone" and policy == "drop_field":  # sent without it, with a warning
            assert i not in rejected and warned[i].column == "phone"
            assert warned[i].state is RowState.IMPORTED_WITH_WARNINGS
            assert warned[i].value == row["phone"].strip()
            continue
        assert i not in warned
        if verdict is None and i not in rejected:
            continue
        assert i in rejected, (row, "should have been valid")
        assert verdict is not None, (row, rejected[i].reason)
        assert rejected[i].column == (MAPPING.email if verdict == "email" else "phone")
        assert rejected[i].reason and rejected[i].state is RowState.INVALID
    for payload, email, row_no in zip(chunk.payloads, chunk.emails, chunk.rows, strict=True):
        profile = orjson.loads(payload)["attributes"]
        raw = data[row_no - 1]
        assert profile["email"] == email == careful_email(raw["email"].strip())[0]
        assert email.isascii()  # Klaviyo takes ASCII addresses: IDN domains go as punycode
        if raw["phone"].strip():
            expected = careful_phone(raw["phone"].strip(), "US")[0]
            assert profile.get("phone_number") == expected
        if raw["name"].strip():
            assert profile["first_name"] == raw["name"].strip()
        if raw["score"].strip():
            check_json_value(raw["score"], profile["properties"]["score"])
        assert len(payload) <= MAX_PROFILE_BYTES


# ---- packing at Klaviyo's real limits -------------------------------------------------------


def pack_all(
    packer: BatchPacker, parts: list[tuple[pa.Array, np.ndarray, pa.Array, str]]
) -> list[Batch]:
    out: list[Batch] = []
    for payloads, rows_, emails, segment in parts:
        out += packer.add_arrays(payloads, rows_, emails, segment)
    last = packer.flush()
    return [*out, last] if last else out


@settings(max_examples=8, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 26_000),
    st.sampled_from([(60, 200), (300, 700), (200, 3_000), (50, 40_000)]),
    st.integers(1, 6),
)
@example(seed=1, n=25_000, sizes=(60, 200), parts=4)  # the count limit cuts
@example(seed=2, n=3_000, sizes=(200, 3_000), parts=2)  # the byte budget cuts
def test_real_limits_hold_for_any_size_mix(
    seed: int, n: int, sizes: tuple[int, int], parts: int
) -> None:
    """No batch over 10,000 profiles or the byte budget (nor Klaviyo's 5 MB); every row once."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(*sizes, size=n)
    payloads = [
        b'{"type":"profile","attributes":{"email":"u%d@x.com","p":"%s"}}' % (i, b"x" * int(k))
        for i, k in enumerate(lengths)
    ]
    cuts = sorted(set(rng.integers(0, n, size=parts - 1).tolist()) | {0, n})
    chunks = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        segment = f"seg{a % 3}"
        chunks.append(
            (
                pa.array(payloads[a:b], pa.binary()),
                np.arange(a + 1, b + 1, dtype=np.int64),
                pa.array([f"u{i}@x.com" for i in range(a, b)]),
                segment,
            )
        )
    batches = pack_all(BatchPacker("L"), chunks)
    assert [r for b in batches for r in b.rows] == list(range(1, n + 1))
    for b in batches:
        assert 0 < b.count <= KLAVIYO_MAX_PROFILES
        assert len(b.body) <= MAX_BYTES <= KLAVIYO_MAX_BODY
    body = orjson.loads(batches[-1].body)["data"]["attributes"]["profiles"]["data"]
    assert len(body) == batches[-1].count
    if sum(len(p) for p in payloads) + n < MAX_BYTES and n > MAX_PROFILES:
        assert batches[0].count == MAX_PROFILES  # the count limit, not bytes, cut the first


# ---- the whole pipeline: every row ends in exactly one place --------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows(30), rows(30), st.integers(1, 25), st.integers(1, 9))
def test_pipeline_and_packer_partition_every_row(
    tmp_path: Path,
    a: list[dict[str, str]],
    b: list[dict[str, str]],
    chunk_rows: int,
    max_profiles: int,
) -> None:
    if len(a) > 2 and len(b) > 2:  # a cross-segment duplicate, in another case
        b[0] = dict(b[0], email=" " + a[1]["email"].upper() + " ")
    paths = {}
    for name, data in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.csv"
        pd.DataFrame(data).to_csv(path, index=False)
        paths[name] = Segment(name, str(path))
    export = Export("e", "c", "L", ("a", "b"), MAPPING)
    packer = BatchPacker("L", max_profiles=max_profiles, max_bytes=20_000)
    batches: list[Batch] = []
    rejects: list[Reject] = []
    for item in iter_validated(export, paths, chunk_rows=chunk_rows):
        if isinstance(item, ValidatedChunk):
            rejects += item.rejects
            batches += packer.add_arrays(
                item.payload_array, item.row_array, item.email_array, item.segment
            )
    batches += [x for x in [packer.flush()] if x]
    sent = [(s, r) for x in batches for s, r in zip(x.segments, x.rows, strict=True)]
    held = [(r.segment, r.row) for r in rejects]
    everything = [("a", i) for i in range(1, len(a) + 1)] + [("b", i) for i in range(1, len(b) + 1)]
    assert sorted(sent + held) == sorted(everything)  # each row once: sent or rejected
    emails = [e for x in batches for e in x.emails]
    assert len(emails) == len(set(emails))  # no customer twice
    by_key = {"a": a, "b": b}
    for reject in rejects:
        assert reject.reason
        assert reject.state in (RowState.INVALID, RowState.DUPLICATE)
        raw = by_key[reject.segment][reject.row - 1]
        if reject.state is RowState.DUPLICATE:
            winner_seg, _, winner_row = reject.reason.removeprefix("duplicate of ").partition(
                " row "
            )
            winner = by_key[winner_seg][int(winner_row) - 1]
            assert (
                careful_email(winner["email"].strip())[0] == careful_email(raw["email"].strip())[0]
            )
            assert (winner_seg, int(winner_row)) > (reject.segment, reject.row)  # last row wins
        else:
            assert expected_verdict(raw) is not None
    for x in batches:
        assert x.count <= max_profiles and len(x.body) <= 20_000
        profiles = orjson.loads(x.body)["data"]["attributes"]["profiles"]["data"]
        assert [p["attributes"]["email"] for p in profiles] == x.emails


# ---- one identifier, one email ----------------------------------------------------------------

_POOL_EMAILS = st.sampled_from(
    ["a@x.com", "A@x.com ", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "bad", ""]
)
_POOL_PHONES = st.sampled_from(
    ["", "(415) 555-0101", "+1 415 555 0101", "+14155550102", "415-555-0103", "12", "n/a"]
)
_POOL_IDS = st.sampled_from(["", "id-1", "id-2", " id-2 ", "id-3", "x" * 256])


@st.composite
def identity_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    n = draw(st.integers(1, 25))
    return [
        {"email": draw(_POOL_EMAILS), "phone": draw(_POOL_PHONES), "ext": draw(_POOL_IDS)}
        for _ in range(n)
    ]


ID_MAPPING = Mapping(email="email", phone_number="phone", external_id="ext")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    identity_rows(),
    identity_rows(),
    st.integers(1, 10),
    st.sampled_from(["drop_field", "reject_row"]),
)
def test_no_identifier_is_ever_sent_with_two_different_emails(
    tmp_path: Path,
    a: list[dict[str, str]],
    b: list[dict[str, str]],
    chunk_rows: int,
    policy: str,
) -> None:
    segments = {}
    for name, data in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.csv"
        pd.DataFrame(data).to_csv(path, index=False)
        segments[name] = Segment(name, str(path))
    export = Export("e", "c", "L", ("a", "b"), ID_MAPPING, on_invalid_field=policy)
    sent: list[dict[str, Any]] = []
    warnings: list[Reject] = []
    for item in iter_validated(export, segments, chunk_rows=chunk_rows):
        if isinstance(item, ValidatedChunk):
            sent += [orjson.loads(p)["attributes"] for p in item.payloads]
            warnings += item.warnings
    for field in ("phone_number", "external_id"):
        emails_by_value: dict[object, set[object]] = {}
        for profile in sent:
            if field in profile:
                emails_by_value.setdefault(profile[field], set()).add(profile["email"])
        assert all(len(e) == 1 for e in emails_by_value.values()), (field, emails_by_value)
    # The oracle: each email's last row is the customer; a usable identifier that two or more
    # customers have goes with none of them, and each of those rows says so.
    rows = [("a", i + 1, r) for i, r in enumerate(a)] + [("b", i + 1, r) for i, r in enumerate(b)]
    winners: dict[str, tuple[str, int, dict[str, str]]] = {}
    for seg, row_no, row in rows:
        email = careful_email(row["email"].strip())[0] if row["email"].strip() else None
        if email:
            winners[email] = (seg, row_no, row)
    phones = {e: careful_phone(r["phone"].strip(), "US")[0] for e, (_, _, r) in winners.items()}
    ext_texts = {e: r["ext"].strip() for e, (_, _, r) in winners.items()}
    exts = {e: v if v and len(v) <= 255 else None for e, v in ext_texts.items()}
    shared_warnings = {(w.segment, w.row, w.column) for w in warnings if "shared" in w.reason}
    by_email = {p["email"]: p for p in sent}
    for values, field, column in ((phones, "phone_number", "phone"), (exts, "external_id", "ext")):
        holders: dict[str, list[str]] = {}
        for email, value in values.items():
            if value:
                holders.setdefault(value, []).append(email)
        for value, emails in holders.items():
            for email in emails:
                seg, row_no, _ = winners[email]
                if email not in by_email:
                    continue  # rejected for another reason (reject_row)
                if len(emails) > 1:
                    assert field not in by_email[email]
                    assert (seg, row_no, column) in shared_warnings
                else:
                    assert by_email[email].get(field) == value
    if policy == "drop_field":  # every customer with a valid email reaches the list
        assert sorted(by_email) == sorted(winners)
