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
_Desc = tuple[frozenset[int], re.Pattern[str]]
_Region = tuple[str, re.Pattern[str] | None, _Desc, tuple[_Desc, ...]]


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length or ()), re.compile(desc.national_number_pattern)


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
        general = _desc(meta.general_desc)
        if general is None:
            return None
        by_lengths: dict[frozenset[int], list[str]] = {}  # one alternation per length set
        for name in _TYPES:
            desc = getattr(meta, name)
            if desc is not None and desc.national_number_pattern:
                lengths = frozenset(desc.possible_length or ())
                by_lengths.setdefault(lengths, []).append(desc.national_number_pattern)
        types = tuple(
            (lengths, re.compile("|".join(f"(?:{p})" for p in patterns)))
            for lengths, patterns in by_lengths.items()
        )
        leading = re.compile(meta.leading_digits) if meta.leading_digits else None
        out.append((code, leading, general, types))
    return tuple(out)


def _matches(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _known_type(nsn: str, region: _Region) -> bool:
    _code, _leading, general, types = region
    if not _matches(nsn, general):
        return False
    return any(_matches(nsn, d) for d in types)


def _careful(e164: str) -> tuple[bool, str | None]:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False, None
    if not phonenumbers.is_valid_number(number):
        return False, None
    return True, phonenumbers.region_code_for_number(number)


@lru_cache(maxsize=200_000)
def classify(e164: str) -> tuple[bool, str | None]:
    """(valid, ISO region) for a string already matching E164_RE."""
    digits = e164[1:]
    for size in (1, 2, 3):
        cc = int(digits[:size])
        if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False, None
    nsn = digits[size:]
    regions = _regions(cc)
    if regions is None or nsn.startswith("0"):
        return _careful(e164)
    for region in regions:
        leading = region[1]
        if leading is not None:
            if leading.match(nsn):
                return (True, region[0]) if _known_type(nsn, region) else _careful(e164)
        elif _known_type(nsn, region):
            return True, region[0]
    return _careful(e164)
