"""Opening a source file safely: only regular files, kinds by extension, decompressed streams.

A path that names a FIFO or a device would hang the reader forever or feed it endless bytes, so
the path is checked with `stat` and the file is then opened with O_NONBLOCK (opening a FIFO that
was swapped in after the check returns at once instead of waiting for a writer) and checked
again on the open descriptor with `fstat`. Everything afterwards reads that one descriptor, so
the file that was checked is the file that is read.

Delimited text and JSON Lines may be compressed (.gz, .bz2, .zst, .xz) or be the one file of a
.zip; they are decompressed as a stream, never into memory or onto disk.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pyarrow as pa

from klaviyo_tui.input.sources.common import SourceError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_TEXT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_BINARY = {".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}
#: Compression suffix -> codec. gzip, bz2 and xz come with Python; zstd is pyarrow's codec.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz"}

SUPPORTED_EXTENSIONS: dict[str, str] = {
    **_TEXT,
    **_BINARY,
    **{inner + outer: kind for inner, kind in _TEXT.items() for outer in COMPRESSIONS},
    ".zip": "zip",
}
"""File extension -> reader. SQL sources are recognised by `Segment.query`, not by extension.
A .zip must hold exactly one delimited-text or JSON Lines file; its own name gives the reader."""

SUPPORTED_SUMMARY = (
    f"{', '.join([*_TEXT, *_BINARY])}; text files may also be compressed "
    f"({', '.join(COMPRESSIONS)}) or be the only file in a .zip"
)
"""The supported types in one line, for messages and the file picker."""

_IO_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class FileKind:
    """How to read a file: the reader, the compression (if any), and the suffix that names it."""

    kind: str  # csv | jsonl | parquet | xlsx | zip
    compression: str | None = None  # gzip | bz2 | zstd | xz | zip
    suffix: str = ""  # the format's own suffix (".tsv" for a .tsv.gz), for delimiter detection

    @property
    def label(self) -> str:
        """'CSV', or 'gzip-compressed CSV', for messages."""
        name = self.kind.upper()
        if self.compression is None or self.kind == "zip":
            return name
        if self.compression == "zip":
            return f"{name} in a .zip"
        return f"{self.compression}-compressed {name}"


def kind_of(path: Path) -> FileKind:
    """The reader for `path` by its extension(s); SourceError lists the supported ones."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".zip":
        return FileKind("zip", "zip")
    if suffix in COMPRESSIONS:
        inner = suffixes[0] if len(suffixes) == 2 else ""
        if inner in _TEXT:
            return FileKind(_TEXT[inner], COMPRESSIONS[suffix], inner)
        if inner in _BINARY:
            raise SourceError(
                f"{path}: a compressed {_BINARY[inner].upper()} file cannot be read as a stream; "
                f"decompress it first ({_BINARY[inner].upper()} is already compressed inside)."
            )
        raise SourceError(
            f"{path}: compressed, but the name does not say what is inside; name it like "
            f"customers.csv{suffix} or customers.jsonl{suffix}."
        )
    if suffix in _TEXT:
        return FileKind(_TEXT[suffix], None, suffix)
    if suffix in _BINARY:
        return FileKind(_BINARY[suffix], None, suffix)
    raise SourceError(
        f"{path}: unsupported file type {suffix or '(no extension)'!r}. "
        f"Supported: {SUPPORTED_SUMMARY}; or set a SQL query for a database source."
    )


# ---- opening ----------------------------------------------------------------------------------


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_irregular(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise SourceError(f"{path} is a directory; the source must be a file.")
    if not stat.S_ISREG(mode):
        raise SourceError(
            f"{path} is {_file_type(mode)}, not a regular file; the source must be a file on "
            "disk (copy the data into a file first)."
        )


def check_path(path: Path) -> os.stat_result:
    """The path's `stat` (links followed), or SourceError unless it is a readable regular file."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise SourceError(f"{path}: file not found. Check the segment's source path.") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it: {exc.strerror or exc}.") from None
    _refuse_irregular(path, st.st_mode)
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: permission denied; make the file readable for this user.")
    return st


class FileReader(io.RawIOBase):
    """Reads the open descriptor from its own position and shows every byte read to `seen`.

    Several readers share one descriptor without disturbing each other (each seeks to its own
    position before it reads); the descriptor belongs to the `OpenSource`, not to the reader.
    """

    def __init__(self, fd: int, seen: Callable[[bytes], None] | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._pos = 0
        self._seen = seen

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += os.fstat(self._fd).st_size
        if offset < 0:  # as a real file says it (zipfile relies on it)
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = offset
        return offset

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(_IO_BYTES):
                parts.append(chunk)
            return b"".join(parts)
        if hasattr(os, "pread"):
            data = os.pread(self._fd, size, self._pos)
        else:  # pragma: no cover - Windows has no pread
            os.lseek(self._fd, self._pos, os.SEEK_SET)
            data = os.read(self._fd, size)
        self._pos += len(data)
        if self._seen is not None and data:
            self._seen(data)
        return data

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


@dataclass(frozen=True, slots=True)
class OpenSource:
    """A source file, opened once: its path, descriptor and `fstat` at opening."""

    path: Path
    fd: int
    stat: os.stat_result

    def reader(self, seen: Callable[[bytes], None] | None = None) -> FileReader:
        """A new reader from the start of the file."""
        return FileReader(self.fd, seen)


@contextmanager
def open_source(path: Path) -> Iterator[OpenSource]:
    """Open a regular file without ever blocking on a FIFO, and check it on the descriptor."""
    check_path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise SourceError(f"{path}: file not found. Check the segment's source path.") from None
    except PermissionError:
        raise SourceError(
            f"{path}: permission denied; make the file readable for this user."
        ) from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot open it: {exc.strerror or exc}.") from None
    try:
        st = os.fstat(fd)
        _refuse_irregular(path, st.st_mode)  # swapped for a FIFO or device after check_path
        yield OpenSource(path, fd, st)
    finally:
        os.close(fd)


# ---- decompressed streams -------------------------------------------------------------------


class _NativeRaw(io.RawIOBase):
    """A pyarrow input stream as a Python raw stream (so that lines can be read from it)."""

    def __init__(self, native: pa.NativeFile) -> None:
        super().__init__()
        self._native = native

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._native.read(len(view))
        view[: len(data)] = data
        return len(data)


def _is_mac_litter(name: str) -> bool:
    """What macOS's Finder adds to a zip it makes: resource forks and folder settings."""
    return name.startswith("__MACOSX/") or Path(name).name.startswith(("._", ".DS_Store"))


def zip_member(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    """The one file of a .zip (folders and macOS's litter do not count)."""
    members = [i for i in archive.infolist() if not i.is_dir() and not _is_mac_litter(i.filename)]
    if len(members) != 1:
        names = ", ".join(repr(m.filename) for m in members[:10])
        more = f" and {len(members) - 10} more" if len(members) > 10 else ""
        found = f"{len(members)} files: {names}{more}" if members else "no files"
        raise SourceError(
            f"{path}: a .zip source must hold exactly one file, and it holds {found}. "
            "Put one CSV or JSON Lines file in the zip, or extract the one you want."
        )
    member = members[0]
    if member.flag_bits & 0x1:
        raise SourceError(f"{path}: {member.filename!r} is password-protected; extract it first.")
    return member


def resolve(src: OpenSource, kind: FileKind) -> FileKind:
    """For a .zip, the kind of the one file inside (by its own name); other kinds as they are."""
    if kind.kind != "zip":
        return kind
    try:
        with zipfile.ZipFile(src.reader()) as archive:
            member = zip_member(archive, src.path).filename
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{src.path} is not a valid .zip file ({exc}).") from None
    suffix = Path(member).suffix.lower()
    if suffix not in _TEXT:
        raise SourceError(
            f"{src.path}: the file inside, {member!r}, is not delimited text or JSON Lines; "
            f"a .zip may hold one of {', '.join(_TEXT)}."
        )
    return FileKind(_TEXT[suffix], "zip", suffix)


def _decompressed(raw: FileReader, kind: FileKind, path: Path) -> io.BufferedIOBase:
    buffered = io.BufferedReader(raw, _IO_BYTES)
    if kind.compression is None:
        return buffered
    if kind.compression == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if kind.compression == "bz2":
        return bz2.BZ2File(buffered)
    if kind.compression == "xz":
        return lzma.LZMAFile(buffered)
    if kind.compression == "zstd":
        native = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")
        return io.BufferedReader(_NativeRaw(native), _IO_BYTES)
    archive = zipfile.ZipFile(raw)
    return cast(io.BufferedIOBase, archive.open(zip_member(archive, path)))  # a ZipExtFile


@contextmanager
def open_stream(
    src: OpenSource, kind: FileKind, seen: Callable[[bytes], None] | None = None
) -> Iterator[io.BufferedIOBase]:
    """The file's bytes, decompressed, as a buffered binary stream; `seen` gets the raw bytes."""
    stream = _decompressed(src.reader(seen), kind, src.path)
    try:
        yield stream
    finally:
        stream.close()
