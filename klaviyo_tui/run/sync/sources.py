"""Source hashes (run/sync/hashing.py, `sources`): what their key covers besides the row's own
values, and finding a chunk's hashes again for the rows that came out of validation."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

import numpy as np

from klaviyo_tui.input import fastcheck, fields, identifiers, jsoncols, mapping
from klaviyo_tui.run.sync import hashing
from klaviyo_tui.store.config import Export

#: Bump when what a source hash covers changes: every stored one stops matching.
SOURCE_FORMAT = 1


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover (a source checkout without metadata)
        return "-"


#: The code that turns source values into a payload (or a reject): a change to it changes what
#: a row's payload is, with or without a new version number.
_PAYLOAD_CODE: tuple[ModuleType, ...] = (mapping, jsoncols, fields, fastcheck, identifiers, hashing)


@functools.cache
def _code_digest() -> str:
    digest = hashlib.blake2b(digest_size=16)
    for module in _PAYLOAD_CODE:
        try:
            digest.update(Path(module.__file__ or "").read_bytes())
        except OSError:  # pragma: no cover (no file to read: the version stands for it)
            digest.update(module.__name__.encode())
    return digest.hexdigest()


def source_context(export: Export, kinds: dict[str, str]) -> str:
    """Everything besides a row's source values that shapes its payload or its validity: the
    source hash is keyed with it (hashing.py), so a change to any of these stops every stored
    source hash from matching."""
    m = export.mapping
    return json.dumps(
        [
            SOURCE_FORMAT,
            m.fields(),
            sorted(m.location.items()),
            list(m.properties),
            export.default_region,
            export.on_invalid_field,
            sorted(kinds.items()),
            [_version(p) for p in ("klaviyo-tui", "phonenumbers", "email-validator", "pyarrow")],
            _version("pandas"),
            _code_digest(),
        ],
        separators=(",", ":"),
    )


def sources_of(fresh: tuple[np.ndarray, np.ndarray] | None, rows: np.ndarray) -> np.ndarray:
    """The source hashes worked out before validation (`fresh`: the chunk's rows and their
    hashes) of the `rows` that came out of it valid; 0 for a row without one."""
    out = np.zeros(len(rows), np.uint64)
    if fresh is None or not len(rows) or not len(fresh[0]):
        return out
    seen, sources = fresh
    order = np.argsort(seen, kind="stable")
    at = order[np.minimum(np.searchsorted(seen, rows, sorter=order), len(seen) - 1)]
    hit = seen[at] == rows
    out[hit] = sources[at[hit]]
    return out
