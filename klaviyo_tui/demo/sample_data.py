"""Realistic, deterministic sample customers for the demo, the benchmark and tests.

Vectorised with numpy and pyarrow (1M rows in a few seconds). About `invalid_rate` of the rows
carry a bad email or a bad phone, and about 0.5% repeat an earlier customer's email (with different
case or spacing), so every path of the pipeline shows up. US numbers come in national and E.164
forms; GB and DE numbers in international forms, as they would in a US-based shop's data. As in
real life, some customers share a phone number: about `shared_phone_rate` of the rows reuse an
earlier customer's number in another format (a household, a shared business line), and a few
give the shop's own number as a placeholder. The pipeline sends those customers without the
shared number (input/identifiers.py), so they end `imported_with_warnings`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FORMATS = ("csv", "parquet", "jsonl", "xlsx")

_FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Mary",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Lynn",
    "Yukihiro",
    "Hanna",
    "Jean",
    "Zoë",
    "Renée",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Knuth",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Keller",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Conway",
    "Matsumoto",
    "Wallach",
    "Sammet",
    "O'Brien",
    "Müller",
]
_DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "example.com",
    "acme.io",
    "shop.example.org",
    "mail.de",
    "web.co.uk",
]
_CITIES = {
    "US": ["New York", "San Francisco", "Chicago", "Boston", "Seattle", "Austin"],
    "GB": ["London", "Manchester", "Edinburgh", "Bristol"],
    "DE": ["Berlin", "München", "Hamburg", "Köln"],
}
_US_AREAS = np.array([212, 312, 415, 617, 646, 206, 512, 303, 404, 702])
_BAD_EMAILS = np.array(
    ["not-an-email", "jane@", "@example.com", "a..b@example.com", "x@y", "bob@@mail.com"]
)
_BAD_PHONES = np.array(["12345", "+1 000 000 0000", "555-CALL-NOW", "+44 12", "0000000"])
PLACEHOLDER_PHONE = "(415) 555-0100"  # the shop's own line, typed in for walk-in customers


def _pick(rng: np.random.Generator, values: list[str] | np.ndarray, n: int) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[rng.integers(0, len(values), n)], pa.string())


def _digits(rng: np.random.Generator, n: int, width: int, low: int = 0) -> pa.Array:
    nums = rng.integers(low, 10**width, n)
    return pc.utf8_lpad(pc.cast(pa.array(nums), pa.string()), width, "0")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def customers_table(
    rows: int, *, invalid_rate: float = 0.01, shared_phone_rate: float = 0.01, seed: int = 0
) -> pa.Table:
    """The sample customers as a pyarrow Table (all columns strings, as in a CSV export)."""
    rng = np.random.default_rng(seed)
    n = rows
    first, last = _pick(rng, _FIRST, n), _pick(rng, _LAST, n)
    ids = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
    local = pc.utf8_lower(_join(first, ".", pc.replace_substring_regex(last, "[^A-Za-z]", ""), ids))
    local = pc.utf8_normalize(local, "NFKD")
    local = pc.replace_substring_regex(local, "[^a-z0-9.]", "")
    email = _join(local, "@", _pick(rng, _DOMAINS, n))

    country_code = rng.choice(np.array(["US", "GB", "DE"]), n, p=[0.7, 0.15, 0.15])
    country = pa.array(country_code, pa.string())
    us_style = rng.integers(0, 4, n)
    area = pc.cast(pa.array(_US_AREAS[rng.integers(0, len(_US_AREAS), n)]), pa.string())
    exch, line = _digits(rng, n, 3, 200), _digits(rng, n, 4)
    us = pc.case_when(
        pc.make_struct(*(pa.array(us_style == k) for k in range(3))),
        _join("(", area, ") ", exch, "-", line),
        _join(area, "-", exch, "-", line),
        _join("+1 ", area, " ", exch, " ", line),
        _join("+1", area, exch, line),
    )
    gb_mobile = rng.random(n) < 0.5
    gb = pc.if_else(
        pa.array(gb_mobile),
        _join("+44 79", _digits(rng, n, 2), " ", _digits(rng, n, 6)),
        _join("+44 20 7", _digits(rng, n, 3), " ", _digits(rng, n, 4)),
    )
    de = _join("+49 30 ", _digits(rng, n, 8, 10_000_000))
    phone = pc.case_when(
        pc.make_struct(pa.array(country_code == "US"), pa.array(country_code == "GB")), us, gb, de
    )

    city = pa.array(np.empty(n, dtype=object))
    for code, names in _CITIES.items():
        mask = pa.array(country_code == code)
        city = pc.if_else(mask, _pick(rng, names, n), city)

    bad = rng.random(n)
    bad_email = bad < invalid_rate / 2
    bad_phone = (bad >= invalid_rate / 2) & (bad < invalid_rate)
    email = pc.if_else(pa.array(bad_email), _pick(rng, _BAD_EMAILS, n), email)
    phone = pc.if_else(pa.array(bad_phone), _pick(rng, _BAD_PHONES, n), phone)
    no_phone = rng.random(n) < 0.05
    phone = pc.if_else(pa.array(no_phone & ~bad_phone), "", phone)
    # a stream of its own, so every other column stays as it was for the same seed
    shared_rng = np.random.default_rng([seed, 1])
    phone = _shared_phones(shared_rng, phone, ~(no_phone | bad_phone), shared_phone_rate)

    # ~0.5% repeat an earlier row's email, in upper case or with spaces around it.
    dup = np.flatnonzero(rng.random(n) < 0.005)
    dup = dup[dup > 0]
    if len(dup):
        source = (rng.random(len(dup)) * dup).astype(np.int64)
        copied = email.take(pa.array(source))
        copied = pc.if_else(
            pa.array(rng.random(len(dup)) < 0.5), pc.utf8_upper(copied), _join(" ", copied, " ")
        )
        idx = np.arange(n)
        mask = np.zeros(n, dtype=bool)
        mask[dup] = True
        email = pc.replace_with_mask(email, pa.array(mask), copied)
        del idx

    ltv = pc.cast(pa.array(np.round(rng.gamma(2.0, 120.0, n), 2)), pa.string())
    orders = pc.cast(pa.array(rng.poisson(3, n)), pa.string())
    days = rng.integers(0, 3650, n).astype("timedelta64[D]") + np.datetime64("2015-01-01")
    signup = pa.array(np.datetime_as_string(days, unit="D"), pa.string())
    vip = pc.if_else(pa.array(rng.random(n) < 0.1), "true", "false")
    zip_code = _digits(rng, n, 5)
    return pa.table(
        {
            "email": email,
            "first_name": first,
            "last_name": last,
            "phone": phone,
            "city": city,
            "country": country,
            "zip": zip_code,
            "lifetime_value": ltv,
            "orders": orders,
            "signup_date": signup,
            "vip": vip,
        }
    )


def _shared_phones(
    rng: np.random.Generator, phone: pa.Array, usable: np.ndarray, rate: float
) -> pa.Array:
    """About `rate` of the rows with a usable phone take an earlier such row's number, written
    the E.164 way (+1..., +44...: the same line, formatted by another system), and 1 in 5 of
    those the shop's placeholder instead."""
    n = len(phone)
    candidates = np.flatnonzero(usable)
    if rate <= 0 or len(candidates) < 2:
        return phone
    pick = candidates[1:][rng.random(len(candidates) - 1) < rate]
    if not len(pick):
        return phone
    where = np.searchsorted(candidates, pick)
    source = candidates[(rng.random(len(pick)) * where).astype(np.int64)]
    copied = phone.take(pa.array(source))
    plus = pc.starts_with(copied, "+")
    digits = pc.replace_substring_regex(copied, "[^0-9]", "")
    copied = pc.if_else(plus, _join("+", digits), _join("+1", digits))
    placeholder = rng.random(len(pick)) < 0.2
    copied = pc.if_else(pa.array(placeholder), PLACEHOLDER_PHONE, copied)
    mask = np.zeros(n, dtype=bool)
    mask[pick] = True
    return pc.replace_with_mask(phone, pa.array(mask), copied)


def generate_customers(
    path: Path,
    rows: int,
    *,
    invalid_rate: float = 0.01,
    shared_phone_rate: float = 0.01,
    seed: int = 0,
    fmt: str = "csv",
) -> Path:
    """Write `rows` sample customers to `path` in `fmt` (csv, parquet, jsonl, xlsx)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    table = customers_table(
        rows, invalid_rate=invalid_rate, shared_phone_rate=shared_phone_rate, seed=seed
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif fmt == "jsonl":
        table.to_pandas().to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        table.to_pandas().to_excel(path, index=False, engine="openpyxl")
    return path
