"""Phone number validity and region, decided by phonenumbers' metadata, cheaply.

`phonenumbers.parse` + `is_valid_number` cost ~20 µs a number; a 10,000-row job would spend
most of its CPU there. For an E.164 string the country code is a prefix lookup and the rest is
the national significant number, so this module replays the library's own validity rules
(`_region_code_for_number_from_list` and `_number_type_helper`: claim order, leading digits,
general and per-type patterns with their possible lengths) with precompiled regexes built from
its metadata. Numbers this fast path cannot settle (non-geographic codes, leading zeros that
parse could treat differently) go through phonenumbers itself. Results are cached.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")

_TYPES = (
    "mobile",
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_Region = tuple[str, re.Pattern[str] | None, re.Pattern[str]]


def _lengths(lengths: frozenset[int]) -> str:
    """A lookahead for the number's length (digits only: E164_RE let nothing else through)."""
    if not lengths:
        return ""
    return "(?=(?:" + "|".join(f"\\d{{{n}}}" for n in sorted(lengths)) + ")$)"


def _known(general: phonenumbers.PhoneNumberDesc, types: dict[frozenset[int], list[str]]) -> str:
    """One pattern for `_number_type_helper(...) != UNKNOWN`: the general description and, of
    the number types, any one (each with its possible lengths). One `fullmatch` per region
    instead of a Python call per description: the sandbox checks every row of every job."""
    head = _lengths(frozenset(general.possible_length or ()))
    alternatives = "|".join(
        _lengths(lengths) + "(?:" + "|".join(f"(?:{p})" for p in dict.fromkeys(patterns)) + ")"
        for lengths, patterns in types.items()
    )
    return f"{head}(?=(?:{general.national_number_pattern})$)(?:{alternatives})"


@lru_cache(maxsize=512)
def _regions(cc: int) -> tuple[_Region, ...] | None:
    """Metadata for a country code in claim order; None leaves the number to phonenumbers."""
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not codes or phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY in codes:
        return None
    out: list[_Region] = []
    for code in codes:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(code, None)
        if meta is None:
            continue
        general = meta.general_desc
        if general is None or not general.national_number_pattern:
            return None
        by_lengths: dict[frozenset[int], list[str]] = {}  # one alternation per length set
        for name in _TYPES:
            desc = getattr(meta, name)
            if desc is not None and desc.national_number_pattern:
                lengths = frozenset(desc.possible_length or ())
                by_lengths.setdefault(lengths, []).append(desc.national_number_pattern)
        leading = re.compile(meta.leading_digits) if meta.leading_digits else None
        known = re.compile(_known(general, by_lengths)) if by_lengths else re.compile("(?!)")
        out.append((code, leading, known))
    return tuple(out)


def _careful(e164: str) -> tuple[bool, str | None]:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False, None
    if not phonenumbers.is_valid_number(number):
        return False, None
    return True, phonenumbers.region_code_for_number(number)


def country_code(e164: str) -> int | None:
    """The country code an E.164 string (or its first four characters) starts with."""
    digits = e164[1:4]
    if not digits.isdigit() or not digits.isascii():
        return None
    for size in (1, 2, 3):
        cc = int(digits[:size])
        if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return cc
    return None


@lru_cache(maxsize=64)
def surely_valid_lines(
    ccs: frozenset[int], sms_regions: frozenset[str] | None
) -> re.Pattern[str] | None:
    """A pattern matching, as a whole line with its leading newline, exactly the E.164 strings
    of these country codes that `classify` finds valid in the code's first region by claim
    order (one of `sms_regions`, when given): one C call checks a job's phone column
    (fastpath.py). Other numbers do not match and go through `classify`."""
    alternatives = []
    for cc in sorted(ccs):
        regions = _regions(cc)
        if not regions or (sms_regions is not None and regions[0][0] not in sms_regions):
            continue
        _code, leading, known = regions[0]
        lead = f"(?=(?:{leading.pattern}))" if leading is not None else ""
        alternatives.append(f"{cc}(?!0){lead}(?:{known.pattern})")
    if not alternatives:
        return None
    head = r"(?m)\n(?=\+[1-9][0-9]{6,14}$)\+(?:"
    return re.compile(head + "|".join(alternatives) + ")$")


@lru_cache(maxsize=200_000)
def classify(e164: str) -> tuple[bool, str | None]:
    """(valid, ISO region) for a string already matching E164_RE."""
    cc = country_code(e164)
    if cc is None:
        return False, None
    nsn = e164[1 + len(str(cc)) :]
    regions = _regions(cc)
    if regions is None or nsn.startswith("0"):
        return _careful(e164)
    for code, leading, known in regions:
        if leading is not None:
            if leading.match(nsn):
                return (True, code) if known.fullmatch(nsn) else _careful(e164)
        elif known.fullmatch(nsn):
            return True, code
    return _careful(e164)
