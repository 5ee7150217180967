"""Noticing a source file that changes while a run reads it (twice: see input/pipeline.py).

A pass records the file's identity when it opens it (device, inode, size, mtime_ns) and a blake2b
hash of the bytes it reads. The stream formats (delimited text and JSON Lines, compressed or not)
hash the raw bytes as they go by, with a checkpoint digest every CHECKPOINT_BYTES, so the second
pass notices different content soon after reading it, usually before those rows are handed on
(pyarrow reads well ahead of the rows it returns). Parquet and xlsx are read by seeking, in an
order that depends on the columns asked for, so their whole file is hashed when a pass opens it.

A change is reported as `SourceChanged` when:
- the second pass opens a file that is not the one the first pass read (replaced, truncated,
  appended, touched), or whose content hashes differently;
- during any pass, the open file or the path's current file stops matching what was opened.

SQL sources are queries, not files: they are not watched.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from klaviyo_tui.input.sources.common import SourceChanged, short
from klaviyo_tui.input.sources.files import OpenSource

#: Raw bytes between two checkpoint digests: cheap to keep (16 bytes per 4 MB), early to compare.
CHECKPOINT_BYTES = 4 << 20
_DIGEST = 16
_WHOLE_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a complete pass read: the file's identity and the hash of its bytes."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    digest: bytes


class ContentHash:
    """blake2b over a stream, with a digest every CHECKPOINT_BYTES to compare with a prior read."""

    def __init__(self, expected: list[bytes] | None = None) -> None:
        self._hash = hashlib.blake2b(digest_size=_DIGEST)
        self._expected = expected
        self._filled = 0  # bytes since the last checkpoint
        self.checkpoints: list[bytes] = []
        self.differs = False

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            room = CHECKPOINT_BYTES - self._filled
            part, view = view[:room], view[room:]
            self._hash.update(part)
            self._filled += len(part)
            if self._filled == CHECKPOINT_BYTES:
                self._checkpoint()

    def _checkpoint(self) -> None:
        digest = self._hash.copy().digest()
        at = len(self.checkpoints)
        self.checkpoints.append(digest)
        self._filled = 0
        if self._expected is not None and (
            at >= len(self._expected) or self._expected[at] != digest
        ):
            self.differs = True

    def digest(self) -> bytes:
        return self._hash.digest()


@dataclass
class SourceWatch:
    """One segment's file across a run's passes: give the same watch to every `read_chunks`."""

    fingerprint: Fingerprint | None = None  # of the last complete pass
    checkpoints: list[bytes] = field(default_factory=list)

    def begin(self, src: OpenSource) -> PassTracker:
        """Start a pass on the opened file; SourceChanged if it is not the file read before."""
        tracker = PassTracker(self, src)
        before = self.fingerprint
        if before is not None:
            tracker.compare(
                (before.device, before.inode, before.size, before.mtime_ns),
                "since the first read",
            )
        return tracker


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _difference(before: tuple[int, int, int, int], after: tuple[int, int, int, int]) -> str:
    if before[:2] != after[:2]:
        return "it was replaced by another file"
    if before[2] != after[2]:
        return f"its size went from {before[2]:,} to {after[2]:,} bytes"
    if before[3] != after[3]:
        return "it was modified"
    return ""


class PassTracker:
    """One pass over one file: checks it stays the same, and records what was read."""

    def __init__(self, watch: SourceWatch, src: OpenSource) -> None:
        self.watch = watch
        self.src = src
        self.opened = _identity(src.stat)
        self._hash: ContentHash | None = None
        self._whole: bytes | None = None

    def changed(self, what: str) -> SourceChanged:
        return SourceChanged(
            f"{self.src.path} changed while it was being read ({what}); the run stopped so that "
            "no row is sent from a mix of two versions. Resume it once the file is stable."
        )

    def compare(self, expected: tuple[int, int, int, int], when: str) -> None:
        what = _difference(expected, self.opened)
        if what:
            raise self.changed(f"{what} {when}")

    def content_hash(self) -> ContentHash:
        """A fresh hash for one read of the stream (a retried read starts again)."""
        previous = self.watch.fingerprint
        self._hash = ContentHash(self.watch.checkpoints if previous is not None else None)
        return self._hash

    def hash_file(self) -> None:
        """Hash the whole file now (seek-read formats); SourceChanged if it differs from before."""
        digest = hashlib.blake2b(digest_size=_DIGEST)
        reader = self.src.reader()
        while chunk := reader.read(_WHOLE_FILE_BYTES):
            digest.update(chunk)
        self._whole = digest.digest()
        previous = self.watch.fingerprint
        if previous is not None and previous.digest and previous.digest != self._whole:
            raise self.changed("its content differs from the first read")

    def check(self) -> None:
        """SourceChanged if the open file or the path's file no longer matches what was opened."""
        now = _identity(os.fstat(self.src.fd))
        what = _difference(self.opened, now)
        if not what:
            try:
                what = _difference(self.opened, _identity(os.stat(self.src.path)))
            except OSError:
                what = "it was deleted or moved"
        if not what and self._hash is not None and self._hash.differs:
            what = "its content differs from the first read"
        if what:
            raise self.changed(what)

    def failed(self, error: BaseException) -> None:
        """The reader failed: SourceChanged if the file explains it (reading is deterministic,
        so a file the previous pass read whole that now fails must have changed)."""
        self.check()
        if self.watch.fingerprint is not None:
            raise self.changed(f"it no longer reads as it did: {short(error)}")

    def finish(self) -> None:
        """The pass read everything: check once more and record its fingerprint for the next."""
        self.check()
        if self._whole is not None:
            digest, checkpoints = self._whole, []
        elif self._hash is not None:
            digest, checkpoints = self._hash.digest(), self._hash.checkpoints
        else:
            digest, checkpoints = b"", []
        previous = self.watch.fingerprint
        if previous is not None and previous.digest and digest and previous.digest != digest:
            raise self.changed("its content differs from the first read")
        self.watch.fingerprint = Fingerprint(*self.opened, digest)
        self.watch.checkpoints = checkpoints


__all__ = ["CHECKPOINT_BYTES", "ContentHash", "Fingerprint", "PassTracker", "SourceWatch"]
