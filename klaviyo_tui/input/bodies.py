"""The exact bytes of a bulk import job's request body, and its fingerprint (input/batching.py
packs the profiles; the journal keys resumed batches by the fingerprint)."""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

PREFIX = b'{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":['


def suffix(list_id: str) -> bytes:
    return (
        b']}},"relationships":{"lists":{"data":[{"type":"list","id":'
        + orjson.dumps(list_id)
        + b"}]}}}}"
    )


def fingerprint_of(body: bytes) -> str:
    """SHA-256's first 16 bytes, hex. OpenSSL's SHA-256 (SHA extensions) is ~2.5x faster than
    Python 3.11's own blake2b, which fingerprinted batches before: 2.2 MB, 3.3 -> 1.3 ms."""
    return hashlib.sha256(body).hexdigest()[:32]


def blake2b_fingerprint(body: bytes) -> str:
    """The fingerprint before SHA-256: an interrupted run journaled it (`Batch.matches`)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def offsets_of(arr: pa.Array) -> np.ndarray:
    """Value boundaries of a binary/string array, rebased to 0 (n + 1 int64)."""
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    return offs.astype(np.int64) - int(offs[0]) if len(offs) else np.zeros(1, np.int64)


def joined(payloads: pa.Array) -> pa.Buffer | bytes:
    """The payloads joined with commas, in one C++ pass (no Python object per payload)."""
    if len(payloads) == 0:
        return b""
    lists = pa.ListArray.from_arrays(pa.array([0, len(payloads)], pa.int32()), payloads)
    return pc.binary_join(lists, pa.scalar(b",", pa.binary()))[0].as_buffer()


def build_body(payloads: list[bytes], list_id: str) -> bytes:
    return PREFIX + b",".join(payloads) + suffix(list_id)
