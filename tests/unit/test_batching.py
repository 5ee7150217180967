"""Packing at both limits, exact bodies, without(), determinism, and property tests."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.batching import Batch, BatchPacker


def _payload(i: int, pad: int = 0) -> bytes:
    return orjson.dumps(
        {"type": "profile", "attributes": {"email": f"u{i}@x.com", "properties": {"p": "x" * pad}}}
    )


def _pack(packer: BatchPacker, payloads: list[bytes]) -> list[Batch]:
    out = [b for i, p in enumerate(payloads) if (b := packer.add(p, i + 1, f"u{i}@x.com", "seg"))]
    last = packer.flush()
    return [*out, last] if last else out


def test_count_limit_and_body_shape() -> None:
    batches = _pack(BatchPacker("LIST1", max_profiles=3), [_payload(i) for i in range(7)])
    assert [b.count for b in batches] == [3, 3, 1]
    assert [b.number for b in batches] == [0, 1, 2]
    body = orjson.loads(batches[1].body)
    assert body["data"]["type"] == "profile-bulk-import-job"
    assert body["data"]["relationships"] == {"lists": {"data": [{"type": "list", "id": "LIST1"}]}}
    emails = [p["attributes"]["email"] for p in body["data"]["attributes"]["profiles"]["data"]]
    assert emails == ["u3@x.com", "u4@x.com", "u5@x.com"] == batches[1].emails
    assert batches[1].rows == [4, 5, 6]
    assert batches[1].segments == ["seg"] * 3


def test_byte_limit_is_measured_on_the_body() -> None:
    payloads = [_payload(i, pad=900) for i in range(40)]
    limit = 5_000
    batches = _pack(BatchPacker("L", max_bytes=limit), payloads)
    assert len(batches) > 1
    for b in batches:
        assert len(b.body) <= limit
        orjson.loads(b.body)
    # Each batch is full: the next payload would not have fitted.
    for b, nxt in zip(batches, batches[1:], strict=False):
        assert len(b.body) + 1 + len(nxt.payloads[0]) > limit


def test_payload_that_cannot_fit_raises() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        BatchPacker("L", max_bytes=200).add(_payload(1, pad=500), 1, "a@x.com")


def test_without_rebuilds_body_and_fingerprint() -> None:
    (batch,) = _pack(BatchPacker("L"), [_payload(i) for i in range(5)])
    smaller = batch.without({0, 3})
    assert smaller.number == batch.number
    assert smaller.count == 3
    assert smaller.rows == [2, 3, 5]
    assert smaller.emails == ["u1@x.com", "u2@x.com", "u4@x.com"]
    assert smaller.fingerprint != batch.fingerprint
    data = orjson.loads(smaller.body)["data"]["attributes"]["profiles"]["data"]
    assert [p["attributes"]["email"] for p in data] == smaller.emails


def test_deterministic() -> None:
    payloads = [_payload(i, pad=i % 50) for i in range(300)]
    a = _pack(BatchPacker("L", max_profiles=40, max_bytes=4000), payloads)
    b = _pack(BatchPacker("L", max_profiles=40, max_bytes=4000), payloads)
    assert [x.fingerprint for x in a] == [y.fingerprint for y in b]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 600), min_size=0, max_size=120),
    st.integers(1, 15),
    st.integers(900, 6000),
)
def test_no_batch_over_limits_and_no_row_lost(
    pads: list[int], max_profiles: int, max_bytes: int
) -> None:
    payloads = [_payload(i, pad) for i, pad in enumerate(pads)]
    batches = _pack(BatchPacker("L", max_profiles=max_profiles, max_bytes=max_bytes), payloads)
    rows = [r for b in batches for r in b.rows]
    assert rows == list(range(1, len(payloads) + 1))  # every row once, in order
    for b in batches:
        assert b.count <= max_profiles
        assert len(b.body) <= max_bytes
        assert orjson.loads(b.body)["data"]["attributes"]["profiles"]["data"] == [
            orjson.loads(p) for p in b.payloads
        ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 600), max_size=40), max_size=5),
    st.integers(1, 15),
    st.integers(900, 6000),
)
def test_add_many_matches_add(chunks: list[list[int]], max_profiles: int, max_bytes: int) -> None:
    one = BatchPacker("L", max_profiles=max_profiles, max_bytes=max_bytes)
    many = BatchPacker("L", max_profiles=max_profiles, max_bytes=max_bytes)
    expected: list[Batch] = []
    got: list[Batch] = []
    row = 0
    for pads in chunks:
        payloads = [_payload(row + i, pad) for i, pad in enumerate(pads)]
        rows = list(range(row + 1, row + 1 + len(pads)))
        emails = [f"u{r}" for r in rows]
        for p, r, e in zip(payloads, rows, emails, strict=True):
            if (b := one.add(p, r, e, "s")) is not None:
                expected.append(b)
        got += many.add_many(payloads, rows, emails, "s")
        row += len(pads)
    expected += [b for b in [one.flush()] if b]
    got += [b for b in [many.flush()] if b]
    assert [(b.number, b.fingerprint, b.rows) for b in got] == [
        (b.number, b.fingerprint, b.rows) for b in expected
    ]


def test_receipt_keeps_what_confirming_needs() -> None:
    (batch,) = _pack(BatchPacker("L"), [_payload(i) for i in range(5)])
    slim = batch.receipt()
    assert (slim.number, slim.fingerprint, slim.count) == (batch.number, batch.fingerprint, 5)
    assert (slim.rows, slim.emails, slim.segments) == (batch.rows, batch.emails, batch.segments)
    assert slim.body == b""
    with pytest.raises(ValueError, match="receipt"):
        slim.payloads  # noqa: B018


def test_add_arrays_matches_add_many() -> None:
    import numpy as np
    import pyarrow as pa

    payloads = [_payload(i, pad=i % 70) for i in range(200)]
    rows = list(range(1, 201))
    emails = [f"u{r}@x.com" for r in rows]
    a = BatchPacker("L", max_profiles=30, max_bytes=3000)
    b = BatchPacker("L", max_profiles=30, max_bytes=3000)
    got = a.add_many(payloads, rows, emails, "s") + [x for x in [a.flush()] if x]
    arr = pa.array(payloads, pa.binary())
    want: list[Batch] = []
    for start in range(0, 200, 37):  # uneven chunks, sliced arrays
        end = min(start + 37, 200)
        want += b.add_arrays(
            arr.slice(start, end - start),
            np.asarray(rows[start:end], np.int64),
            pa.array(emails[start:end]),
            "s",
        )
    want += [x for x in [b.flush()] if x]
    assert [(x.fingerprint, x.rows, x.emails, x.payloads) for x in got] == [
        (x.fingerprint, x.rows, x.emails, x.payloads) for x in want
    ]


def test_a_journaled_blake2b_fingerprint_still_matches() -> None:
    """Runs journaled blake2b fingerprints before SHA-256: resuming one must not resend."""
    import hashlib

    batch = _pack(BatchPacker("L1"), [_payload(i) for i in range(3)])[0]
    assert batch.fingerprint == hashlib.sha256(batch.body).hexdigest()[:32]
    assert batch.matches(batch.fingerprint)
    assert batch.matches(hashlib.blake2b(batch.body, digest_size=16).hexdigest())
    assert not batch.matches(hashlib.blake2b(batch.body + b" ", digest_size=16).hexdigest())
    assert not batch.receipt().matches(hashlib.blake2b(batch.body, digest_size=16).hexdigest())
