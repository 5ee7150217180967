"""Noticing a source file that changes while a run reads it (twice: see input/pipeline.py).

A pass records the file's identity when it opens it (device, inode, size, mtime_ns) and a SHA-256
digest of the whole file (SHA-256, not blake2b: with the CPU's SHA extensions it is twice as fast,
~2 GB/s, and it runs over every byte of both passes). Delimited text and JSON Lines (plain or
.gz/.bz2/.zst/.xz) hash the raw bytes as the reader pulls them, with a checkpoint digest every
CHECKPOINT_BYTES, so the second pass notices different content soon after reading it, usually
before those rows are handed on (pyarrow reads well ahead of the rows it returns). Parquet, xlsx
and .zip are read by seeking, in an order that can depend on the columns asked for, so they are
hashed whole when opened.

A change is reported as `SourceChanged` when:
- the second pass opens a file that is not the one the first pass read (replaced, truncated,
  appended, touched), or whose content hashes differently;
- during any pass, the open file or the path's current file stops matching what was opened;
- a reader fails and the file is found changed (an unchanged file's errors stay input errors).

SQL sources are queries, not files: they are not watched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from klaviyo_tui.input.sources.common import SourceChanged
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
    """SHA-256 over a stream, with a digest every CHECKPOINT_BYTES to compare with a prior read."""

    def __init__(self, expected: list[bytes] | None = None) -> None:
        self._hash = hashlib.sha256()
        self._expected = expected
        self._filled = 0  # bytes since the last checkpoint
        self.size = 0  # bytes hashed
        self.checkpoints: list[bytes] = []
        self.differs = False

    def update(self, data: bytes) -> None:
        self.size += len(data)
        view = memoryview(data)
        while len(view):
            room = CHECKPOINT_BYTES - self._filled
            part, view = view[:room], view[room:]
            self._hash.update(part)
            self._filled += len(part)
            if self._filled == CHECKPOINT_BYTES:
                self._checkpoint()

    def _checkpoint(self) -> None:
        digest = self._hash.copy().digest()[:_DIGEST]
        at = len(self.checkpoints)
        self.checkpoints.append(digest)
        self._filled = 0
        if self._expected is not None and (
            at >= len(self._expected) or self._expected[at] != digest
        ):
            self.differs = True

    def digest(self) -> bytes:
        return self._hash.digest()[:_DIGEST]


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
    """One pass over one file: checks it stays the same, and records what was read.

    Its digest is always that of the whole file: a stream read hashes the bytes as they pass
    (and the tail it did not need, if any, at the end); a seek-read format hashes the file first.
    """

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

    def seen(self) -> Callable[[bytes], None] | None:
        """What a stream reader shows every raw byte to (a fresh hash for each attempt at the
        stream, which starts at byte 0), or None when the file was hashed whole already."""
        if self._whole is not None:
            return None
        previous = self.watch.fingerprint
        self._hash = ContentHash(self.watch.checkpoints if previous is not None else None)
        return self._hash.update

    def _file_digest(self, start: int = 0, into: ContentHash | None = None) -> bytes:
        digest = into or ContentHash()
        reader = self.src.reader()
        reader.seek(start)
        while chunk := reader.read(_WHOLE_FILE_BYTES):
            digest.update(chunk)
        return digest.digest()

    def _compare_digest(self, digest: bytes) -> None:
        previous = self.watch.fingerprint
        if previous is not None and previous.digest and previous.digest != digest:
            raise self.changed("its content differs from the first read")

    def hash_file(self) -> None:
        """Hash the whole file now (seek-read formats); SourceChanged if it differs from before."""
        self._whole = self._file_digest()
        self._compare_digest(self._whole)

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

    def failed(self) -> None:
        """The reader failed: SourceChanged if the file changed (which would explain it)."""
        self.check()
        if self.watch.fingerprint is not None and self._whole is None:
            self._compare_digest(self._file_digest())

    def finish(self) -> None:
        """The pass read everything: check once more and record its fingerprint for the next."""
        self.check()
        if self._whole is not None:
            digest, checkpoints = self._whole, []
        elif self._hash is not None:
            digest = self._file_digest(self._hash.size, into=self._hash)  # the unread tail
            checkpoints = self._hash.checkpoints
        else:  # pragma: no cover - every reader hashes
            digest, checkpoints = self._file_digest(), []
        self._compare_digest(digest)
        self.watch.fingerprint = Fingerprint(*self.opened, digest)
        self.watch.checkpoints = checkpoints


__all__ = ["CHECKPOINT_BYTES", "ContentHash", "Fingerprint", "PassTracker", "SourceWatch"]
