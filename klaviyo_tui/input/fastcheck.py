"""Vectorised email and phone checks (pyarrow.compute) that settle the common rows in bulk.

Per-row email-validator (~20 µs) and phonenumbers (~15 µs) calls would dominate an export, so a
column is first run through these strict checks. **They only ever accept**: a value accepted here
is one the careful libraries accept with the same normalized result (tests/unit/test_mapping.py
checks this with hypothesis). Everything else goes to the careful per-row path, which decides and
explains. The phone check replays phonenumbers' own metadata (patterns, lengths, region claim
order) as RE2 regexes, so it follows the library's data, not a hand-written copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import email_validator
import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.input.jsoncols import data_bytes, drop_bytes

# ---- email ----------------------------------------------------------------------------------

_ATEXT = r"a-z0-9!#$%&'*+/=?^_`{|}~-"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
EMAIL_FAST_RE = rf"^[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@(?:{_LABEL}\.)+[a-z]{{2,63}}$"
"""A strict subset of what email-validator accepts (ASCII dot-atom, LDH labels, letter TLD)."""

_SPECIAL_TLDS = sorted(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def email_fast(normalized: pa.Array) -> np.ndarray:
    """Boolean mask of already trimmed, lower-cased addresses that are surely valid."""
    if len(normalized) == 0:
        return np.zeros(0, dtype=bool)
    ok = pc.match_substring_regex(normalized, EMAIL_FAST_RE)
    ok = pc.and_(ok, pc.less_equal(pc.binary_length(normalized), 254))
    # no special-use name at the end
    for name in _SPECIAL_TLDS:
        ok = pc.and_not(ok, pc.ends_with(normalized, "." + name))
    # pyarrow is untyped and numpy's operators give Any: the annotations say what comes back
    mask: np.ndarray = ok.fill_null(False).to_numpy(zero_copy_only=False)
    surely_valid: np.ndarray = mask & ~_long_local_or_dashes(normalized)
    return surely_valid


def _long_local_or_dashes(arr: pa.Array) -> np.ndarray:
    """Rows whose part before the first "@" is over 64 bytes, or with "--" after the first "@"
    (IDNA rules); one numpy sweep over the bytes instead of two more regex passes."""
    n = len(arr)
    data = data_bytes(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    starts = offsets.astype(np.int64) - int(offsets[0])
    at = np.flatnonzero(data == ord("@"))
    at_row = np.searchsorted(starts, at, "right") - 1
    first_at = np.full(n, -1, dtype=np.int64)
    first_at[at_row[::-1]] = at[::-1]  # the last write wins: the first "@" of each row
    bad = (first_at >= 0) & (first_at - starts[:-1] > 64)
    dashes = np.flatnonzero((data[:-1] == ord("-")) & (data[1:] == ord("-")))
    dash_row = np.searchsorted(starts, dashes, "right") - 1
    inside = dashes + 1 < starts[dash_row + 1]  # both dashes in the same row
    dash_row, dashes = dash_row[inside], dashes[inside]
    first = first_at[dash_row]
    bad[dash_row[(first >= 0) & (dashes > first)]] = True
    return bad


# ---- phone ----------------------------------------------------------------------------------

_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_MAX_INPUT = 64  # well under phonenumbers' 250-character input limit


@dataclass(frozen=True)
class _Desc:
    lengths: tuple[int, ...]
    pattern: str


@dataclass(frozen=True)
class _Region:
    code: str
    leading_digits: str | None
    general: _Desc
    types: tuple[_Desc, ...]  # merged per length set: any match = a known number type


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _Desc(tuple(desc.possible_length or ()), desc.national_number_pattern)


@lru_cache(maxsize=512)
def _regions_for_cc(cc: int) -> tuple[_Region, ...] | None:
    """phonenumbers metadata for a country code, in claim order; None = leave to the slow path."""
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not codes or phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY in codes:
        return None
    out = []
    for code in codes:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(code, None)
        if meta is None:
            continue
        general = _desc(meta.general_desc)
        if general is None:
            return None
        by_lengths: dict[tuple[int, ...], list[str]] = {}
        for name in _TYPE_DESCS:
            d = _desc(getattr(meta, name))
            if d is not None:
                by_lengths.setdefault(d.lengths, []).append(d.pattern)
        types = tuple(
            _Desc(lengths, "|".join(f"(?:{p})" for p in pats))
            for lengths, pats in by_lengths.items()
        )
        out.append(_Region(code, meta.leading_digits, general, types))
    try:  # every pattern must compile under RE2, or the country stays on the careful path
        probe = pa.array(["1"])
        for region in out:
            for d in (region.general, *region.types):
                pc.match_substring_regex(probe, f"^(?:{d.pattern})$")
            if region.leading_digits:
                pc.match_substring_regex(probe, f"^(?:{region.leading_digits})")
    except pa.ArrowInvalid:
        return None
    return tuple(out)


def _matches(nsn: pa.Array, lengths: pa.Array, d: _Desc) -> pa.Array:
    ok = pc.match_substring_regex(nsn, f"^(?:{d.pattern})$")
    if d.lengths:
        ok = pc.and_(ok, pc.is_in(lengths, pa.array(d.lengths, pa.int32())))
    return ok


def _known_type(nsn: pa.Array, region: _Region) -> np.ndarray:
    """phonenumbers' `_number_type_helper(...) != UNKNOWN`, vectorised."""
    lengths = pc.binary_length(nsn)  # digits only: bytes = characters
    any_type = pa.array(np.zeros(len(nsn), dtype=bool))
    for d in region.types:
        any_type = pc.or_(any_type, _matches(nsn, lengths, d))
    ok = pc.and_(_matches(nsn, lengths, region.general), any_type)
    return cast(np.ndarray, ok.to_numpy(zero_copy_only=False))  # pyarrow is untyped


def _valid_for_cc(nsn: pa.Array, cc: int) -> np.ndarray:
    """phonenumbers.is_valid_number for numbers of one country code, vectorised."""
    regions = _regions_for_cc(cc)
    valid = np.zeros(len(nsn), dtype=bool)
    if regions is None:
        return valid
    todo = np.arange(len(nsn))
    for region in regions:
        if len(todo) == 0:
            break
        sub = nsn.take(pa.array(todo))
        if region.leading_digits is not None and len(regions) > 1:
            claimed = pc.match_substring_regex(sub, f"^(?:{region.leading_digits})")
            claimed_np = claimed.to_numpy(zero_copy_only=False)
            hit = todo[claimed_np]
            valid[hit] = _known_type(sub.filter(claimed), region)
            todo = todo[~claimed_np]
        else:
            ok = _known_type(sub, region)
            valid[todo[ok]] = True
            if len(regions) == 1:
                break
            todo = todo[~ok]
    return valid


@lru_cache(maxsize=1)
def _cc_table() -> tuple[np.ndarray, np.ndarray]:
    """(country code, its width) for every three-digit head 000-999; 0 where none is known."""
    cc_of = np.zeros(1000, dtype=np.int64)
    width_of = np.zeros(1000, dtype=np.int64)
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        width = len(str(code))
        first = code * 10 ** (3 - width)
        cc_of[first : first + 10 ** (3 - width)] = code
        width_of[first : first + 10 ** (3 - width)] = width
    return cc_of, width_of


@lru_cache(maxsize=64)
def _national_rules(region: str) -> tuple[int, str | None, str | None] | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    if meta is None or meta.country_code is None:
        return None
    return meta.country_code, meta.international_prefix, meta.national_prefix_for_parsing


def _prefix_mask(arr: pa.Array, pattern: str | None) -> pa.Array:
    if not pattern:
        return pa.array(np.zeros(len(arr), dtype=bool))
    if pattern.isascii() and pattern.isdigit():  # "1", "011": a plain prefix, no regex
        return pc.starts_with(arr, pattern)
    return pc.match_substring_regex(arr, f"^(?:{pattern})")


def _mask(flags: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null = False."""
    return cast(np.ndarray, flags.fill_null(False).to_numpy(zero_copy_only=False))  # untyped


def _intl_or_national(cleaned: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Masks of `^\\+[1-9][0-9]{2,17}$` (international) and `^[1-9][0-9]{1,16}$` (national): one
    regex pass and the lengths instead of two regex passes (0.135 -> 0.095 s per 1M phones)."""
    either = _mask(pc.match_substring_regex(cleaned, r"^\+?[1-9][0-9]{1,17}$"))
    plus = _mask(pc.starts_with(cleaned, "+"))
    length = pc.binary_length(cleaned).fill_null(0).to_numpy(zero_copy_only=False)
    return either & plus & (length >= 4), either & ~plus & (length <= 17)


def phone_fast(raw: pa.Array, default_region: str) -> tuple[np.ndarray, pa.Array]:
    """(settled mask, E.164 strings or null) for phones in +E.164 or the region's national form.

    `raw` holds trimmed, non-empty strings. Rows not settled (mask False) need phonenumbers.
    """
    n = len(raw)
    settled = np.zeros(n, dtype=bool)
    if n == 0:
        return settled, pa.nulls(0, pa.string())
    # bytes, not characters: a value with a non-ASCII character fails both patterns anyway
    short = _mask(pc.less_equal(pc.binary_length(raw), _MAX_INPUT))
    cleaned = drop_bytes(raw, b" ().-")
    intl, national = _intl_or_national(cleaned)
    intl &= short
    national &= short
    digits = pc.utf8_ltrim(cleaned, "+")

    candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (positions, cc, nsn start)
    intl_pos = np.flatnonzero(intl)
    if len(intl_pos):
        sub = digits.take(pa.array(intl_pos))
        # country codes are prefix-free: the first three digits name at most one, of 1-3 digits
        head = pc.cast(pc.utf8_slice_codeunits(sub, 0, 3), pa.int64()).to_numpy()
        cc_of, width_of = _cc_table()
        cc, start = cc_of[head], width_of[head]
        candidates.append((intl_pos, cc, start))
    rules = _national_rules(default_region)
    if rules is not None:
        nat_cc, idd, npfp = rules
        nat = pc.and_not(pa.array(national), _prefix_mask(cleaned, idd))
        nat = pc.and_not(nat, pc.starts_with(cleaned, str(nat_cc)))
        nat = pc.and_not(nat, _prefix_mask(cleaned, npfp))
        nat_pos = np.flatnonzero(nat.to_numpy(zero_copy_only=False))
        if len(nat_pos):
            candidates.append(
                (nat_pos, np.full(len(nat_pos), nat_cc), np.zeros(len(nat_pos), dtype=np.int64))
            )
    parts: list[pa.Array] = []
    where = np.full(n, -1, dtype=np.int64)
    offset = 0
    for positions, ccs, starts in candidates:
        for cc in np.unique(ccs[ccs > 0]).tolist():
            pick = ccs == cc
            pos = positions[pick]
            nsn = pc.utf8_slice_codeunits(digits.take(pa.array(pos)), int(starts[pick][0]))
            regions = _regions_for_cc(cc)
            if regions is None:
                continue
            # parse() would strip a national prefix (even after +cc) or keep a leading zero.
            main = _national_rules(regions[0].code)
            strip = _prefix_mask(nsn, main[2] if main else None)
            plain = pc.invert(pc.or_(strip, pc.starts_with(nsn, "0"))).to_numpy(
                zero_copy_only=False
            )
            ok = plain.copy()  # only plain numbers meet the regions' patterns: fewer rounds
            ok[plain] = _valid_for_cc(nsn.filter(pa.array(plain)), cc)
            good = pos[ok]
            settled[good] = True
            kept = nsn.filter(pa.array(ok))
            parts.append(pc.binary_join_element_wise(pa.repeat(f"+{cc}", len(kept)), kept, ""))
            where[good] = np.arange(offset, offset + len(good))
            offset += len(good)
    if not parts:
        return settled, pa.nulls(n, pa.string())
    values = pa.concat_arrays(parts)
    return settled, values.take(pa.array(where, mask=where < 0))
