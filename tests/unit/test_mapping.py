"""Validation rules, property typing, JSON shape, and fast/careful path equivalence."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import orjson
import pandas as pd
import phonenumbers
import pyarrow as pa
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.fastcheck import _cc_table, email_fast, phone_fast
from klaviyo_tui.input.jsoncols import lower
from klaviyo_tui.input.mapping import MAX_PROFILE_BYTES, careful_email, validate_chunk
from klaviyo_tui.input.preview import detect_email_column, validation_preview
from klaviyo_tui.store.config import Mapping


def _frame(**cols: Sequence[object]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    return pd.DataFrame(cols, index=pd.RangeIndex(1, n + 1)).astype("str")


def _run(
    df: pd.DataFrame, mapping: Mapping, region: str = "US", policy: str = "reject_row"
) -> tuple[list[dict[str, Any]], list[Reject]]:
    chunk = validate_chunk(
        df, mapping, default_region=region, segment="seg", on_invalid_field=policy
    )
    assert len(chunk.payloads) + len(chunk.rejects) == len(df)
    return [orjson.loads(p) for p in chunk.payloads], chunk.rejects


def test_email_rules() -> None:
    df = _frame(
        email=["  Ada@Example.COM ", "", "bad@", "two@@x.com", "x@localhost", "ada@exämple.de"]
    )
    profiles, rejects = _run(df, Mapping(email="email"))
    # an internationalized domain is sent as punycode (Klaviyo takes ASCII addresses)
    assert [p["attributes"]["email"] for p in profiles] == [
        "ada@example.com",
        "ada@xn--exmple-cua.de",
    ]
    assert profiles[0] == {"type": "profile", "attributes": {"email": "ada@example.com"}}
    assert [(r.row, r.column) for r in rejects] == [
        (2, "email"),
        (3, "email"),
        (4, "email"),
        (5, "email"),
    ]
    assert rejects[0].reason == "email is missing"
    assert all(r.state is RowState.INVALID and r.segment == "seg" for r in rejects)
    assert rejects[1].value == "bad@"
    assert "invalid email" in rejects[1].reason


def test_phone_rules() -> None:
    df = _frame(
        email=[f"u{i}@x.com" for i in range(6)],
        phone=[
            "(415) 555-0123",
            "+44 20 7946 0018",
            "",
            "12345",
            "+49 30 12345678",
            "020 7946 0018",
        ],
    )
    profiles, rejects = _run(df, Mapping(email="email", phone_number="phone"))
    phones = [p["attributes"].get("phone_number") for p in profiles]
    assert phones == ["+14155550123", "+442079460018", None, "+493012345678"]
    assert [r.row for r in rejects] == [4, 6]
    assert all(r.column == "phone" and "phone" in r.reason for r in rejects)
    # The same national number is fine when the default region is GB.
    gb, _ = _run(
        _frame(email=["a@x.com"], phone=["020 7946 0018"]), Mapping("email", "phone"), "GB"
    )
    assert gb[0]["attributes"]["phone_number"] == "+442079460018"


def test_external_id_and_size_limits() -> None:
    df = _frame(
        email=["a@x.com", "b@x.com", "c@x.com"],
        ext=["id-1", "x" * 256, "ok"],
        big=["", "", "y" * MAX_PROFILE_BYTES],
    )
    profiles, rejects = _run(df, Mapping(email="email", external_id="ext", properties=("big",)))
    assert [p["attributes"]["external_id"] for p in profiles] == ["id-1"]
    assert rejects[0].row == 2
    assert "255" in rejects[0].reason
    assert rejects[1].row == 3
    assert "100 KB" in rejects[1].reason


def test_fields_location_properties_and_empties() -> None:
    df = _frame(
        email=["a@x.com", "b@x.com"],
        first=['Ada "the first"', "  "],
        city=["Boston", ""],
        zip=["02134", "90210"],
        ltv=["12.50", ""],
        orders=["3", "0"],
        code=["007", "12"],
        vip=["TRUE", "false"],
        since=["2024-01-02 10:00:00", "2023-05-06"],
        note=["tab\there\\", "é"],
    )
    mapping = Mapping(
        email="email",
        first_name="first",
        location={"city": "city", "zip": "zip"},
        properties=("ltv", "orders", "code", "vip", "since", "note"),
    )
    (a, b), _ = _run(df, mapping)
    assert a["attributes"]["first_name"] == 'Ada "the first"'
    assert a["attributes"]["location"] == {"city": "Boston", "zip": "02134"}
    assert a["attributes"]["properties"] == {
        "ltv": 12.5,
        "orders": 3,
        "code": "007",
        "vip": True,
        "since": "2024-01-02T10:00:00",
        "note": "tab\there\\",
    }
    assert "first_name" not in b["attributes"]  # empty values are dropped, never "" or null
    assert b["attributes"]["location"] == {"zip": "90210"}
    assert b["attributes"]["properties"] == {
        "orders": 0,
        "code": "12",
        "vip": False,
        "since": "2023-05-06",
        "note": "é",
    }


def test_no_location_object_when_all_empty() -> None:
    df = _frame(email=["a@x.com"], city=[""])
    (a,), _ = _run(df, Mapping(email="email", location={"city": "city"}))
    assert a["attributes"] == {"email": "a@x.com"}


def test_typed_sources_keep_types() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@x.com", "b@x.com"],
            "n": [1.5, float("nan")],
            "flag": [True, False],
            "k": [3, 4],
        },
        index=pd.RangeIndex(1, 3),
    )
    (a, b), _ = _run(df, Mapping(email="email", properties=("n", "flag", "k")))
    assert a["attributes"]["properties"] == {"n": 1.5, "flag": True, "k": 3}
    assert b["attributes"]["properties"] == {"flag": False, "k": 4}


def test_detect_email_column_and_preview() -> None:
    df = _frame(contact=["a@x.com", "b@y.org", "nope"], name=["A", "B", "C"])
    assert detect_email_column(df) == "contact"
    assert detect_email_column(_frame(E_Mail=["x"], other=["a@b.com"])) == "E_Mail"
    assert detect_email_column(_frame(a=["1"], b=["2"])) is None
    df = _frame(
        email=["a@x.com", "bad", "a@x.com", "c@x.com", "d@x.com"],
        phone=["", "", "", "123", ""],
    )
    report = validation_preview(
        df, Mapping(email="email", phone_number="phone"), "US", on_invalid_field="reject_row"
    )
    assert (
        report.rows,
        report.valid,
        report.invalid_emails,
        report.invalid_phones,
        report.duplicates,
    ) == (5, 2, 1, 1, 1)
    # drop_field (the default): the row with a bad phone is sent without it
    report = validation_preview(df, Mapping(email="email", phone_number="phone"), "US")
    assert (report.valid, report.invalid_phones, report.warned) == (3, 1, 1)
    assert "sent without it" in report.examples["invalid_phones"][0]
    assert report.examples["duplicates"]
    assert len(report.examples["invalid_emails"]) == 1


# ---- fast path == careful path on what the fast path accepts ---------------------------------

_LOCAL = st.text(alphabet="abcXYZ09.-_+!#$%&'*/=?^`{|}~\"(),:;<>@[\\] é", min_size=0, max_size=70)
_DOMAIN = st.text(alphabet="abcxyzAB09.-_é", min_size=0, max_size=70)
_TLDS = st.sampled_from(
    ["com", "de", "test", "local", "x", "co.uk", "c0m", "onion", "museum", "xn--p1ai"]
)
_EMAILS = st.one_of(
    st.builds(
        lambda loc, d, t, ws: f"{ws}{loc}@{d}.{t}{ws}",
        _LOCAL,
        _DOMAIN,
        _TLDS,
        st.sampled_from(["", " ", "\t", "\u00a0", "\u2003"]),
    ),
    st.text(max_size=40),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_EMAILS, min_size=1, max_size=20))
def test_email_fast_path_agrees_with_email_validator(values: list[str]) -> None:
    arr = pa.array(values, pa.string())
    from klaviyo_tui.input.jsoncols import text

    trimmed = text(pd.Series(values, dtype="str"))
    accepted = email_fast(lower(trimmed))
    for value, ok, norm in zip(values, accepted, lower(trimmed).to_pylist(), strict=True):
        if not ok:
            continue
        result = validate_email(value.strip(), check_deliverability=False)  # must not raise
        assert result.normalized.lower() == norm
        assert careful_email(value.strip()) == (norm, "")
    assert len(arr) == len(values)


def test_email_fast_rejects_are_not_accepted_wrongly() -> None:
    for bad in [
        "a..b@x.com",
        ".a@x.com",
        "a@-x.com",
        "a@x-.com",
        "a@x.test",
        "a@x.c0m",
        "a@xn--zz.com",
        "a@x..com",
    ]:
        assert not email_fast(pa.array([bad]))[0], bad
        with contextlib.suppress(EmailNotValidError):
            validate_email(bad, check_deliverability=False)


_PHONE_CHARS = "0123456789+ ()-.x#/"
_PHONES = st.one_of(
    st.text(alphabet=_PHONE_CHARS, max_size=25),
    st.builds(
        lambda cc, rest: f"+{cc} {rest}",
        st.sampled_from(["1", "44", "49", "33", "39", "7", "800", "262", "1 868"]),
        st.text(alphabet="0123456789 -", min_size=4, max_size=14),
    ),
    st.builds(
        lambda a, b, c: f"({a}) {b}-{c}",
        st.integers(100, 999),
        st.integers(100, 999),
        st.integers(0, 9999),
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PHONES, min_size=1, max_size=20), st.sampled_from(["US", "GB", "DE", "IT", "CA"]))
def test_phone_fast_path_agrees_with_phonenumbers(values: list[str], region: str) -> None:
    _agrees_with_phonenumbers(values, region)


def _agrees_with_phonenumbers(values: list[str], region: str) -> None:
    values = [v.strip() or "1" for v in values]
    settled, e164 = phone_fast(pa.array(values, pa.string()), region)
    for value, ok, fast in zip(values, settled, e164.to_pylist(), strict=True):
        if not ok:
            continue
        number = phonenumbers.parse(value, region)  # must not raise
        assert phonenumbers.is_valid_number(number), value
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == fast


def test_phone_fast_path_settles_common_forms() -> None:
    values = [
        "(212) 555-0199",
        "212-555-0199",
        "+1 212 555 0199",
        "+442079460018",
        "+49 30 12345678",
    ]
    settled, e164 = phone_fast(pa.array(values), "US")
    assert settled.all()
    assert e164.to_pylist() == ["+12125550199"] * 3 + ["+442079460018", "+493012345678"]


def test_country_code_table_names_each_code_by_its_own_digits() -> None:
    cc_of, width_of = _cc_table()
    known = set(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for head in range(1000):
        text = f"{head:03d}"
        found = [w for w in (1, 2, 3) if int(text[:w]) in known and text[0] != "0"]
        assert len(found) <= 1, text  # prefix-free
        assert (cc_of[head], width_of[head]) == (
            (int(text[: found[0]]), found[0]) if found else (0, 0)
        )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda cc, rest: f"+{cc}{rest}",
            st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
            st.text(alphabet="0123456789", min_size=1, max_size=14),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_phone_fast_path_agrees_for_every_country_code(values: list[str]) -> None:
    _agrees_with_phonenumbers(values, "US")


# ---- the field policy ----------------------------------------------------------------------


def test_drop_field_sends_the_row_without_the_unusable_field() -> None:
    df = _frame(
        email=["a@x.com", " B@x.com", "bad"],
        phone=["(415) 555-0123", "12", "(415) 555-0124"],
        ext=["id-1", "x" * 256, "id-3"],
        lat=["40.7128", "north", ""],
        first=["Ada", "Bo", "Cy"],
    )
    mapping = Mapping(
        email="email",
        phone_number="phone",
        external_id="ext",
        first_name="first",
        location={"latitude": "lat"},
    )
    chunk = validate_chunk(df, mapping, default_region="US", segment="seg")
    a, b = (orjson.loads(p)["attributes"] for p in chunk.payloads)
    assert a["phone_number"] == "+14155550123" and a["location"] == {"latitude": "40.7128"}
    assert b == {"email": "b@x.com", "first_name": "Bo"}  # sent, without the three bad fields
    assert chunk.rows == [1, 2] and chunk.warned == [False, True]
    assert [(r.row, r.column) for r in chunk.rejects] == [(3, "email")]  # email: always invalid
    assert [(w.row, w.column, w.value) for w in chunk.warnings] == [
        (2, "phone", "12"),
        (2, "ext", "x" * 256),
        (2, "lat", "north"),
    ]
    for w in chunk.warnings:
        assert w.state is RowState.IMPORTED_WITH_WARNINGS and w.segment == "seg"
        assert w.reason.endswith("; sent without it") and w.email == "b@x.com"
        assert dict(w.source_values) == {
            "email": " B@x.com",
            "phone": "12",
            "ext": "x" * 256,
            "first": "Bo",
            "lat": "north",
        }
    assert "not a coordinate" in chunk.warnings[2].reason
    # reject_row: the same problems keep the row out, the first rule it breaks is the reason
    rejected = validate_chunk(
        df, mapping, default_region="US", segment="seg", on_invalid_field="reject_row"
    )
    assert rejected.rows == [1] and rejected.warnings == []
    assert [(r.row, r.column, r.state) for r in rejected.rejects] == [
        (2, "phone", RowState.INVALID),
        (3, "email", RowState.INVALID),
    ]
    assert "sent without" not in rejected.rejects[0].reason
    assert rejected.rejects[0].email == "b@x.com"


def test_oversized_profile_loses_its_biggest_fields_only() -> None:
    df = _frame(
        email=["a@x.com", "b@x.com"],
        notes=["n" * MAX_PROFILE_BYTES, "short"],
        tier=["gold", "silver"],
        first=["Ada", "Bo"],
    )
    mapping = Mapping(email="email", first_name="first", properties=("notes", "tier"))
    chunk = validate_chunk(df, mapping, default_region="US", segment="seg")
    big, small = chunk.payloads
    assert len(big) <= MAX_PROFILE_BYTES
    assert orjson.loads(big)["attributes"] == {
        "email": "a@x.com",
        "first_name": "Ada",
        "properties": {"tier": "gold"},
    }
    assert orjson.loads(small)["attributes"]["properties"] == {"notes": "short", "tier": "silver"}
    [warning] = chunk.warnings
    assert (warning.row, warning.column, warning.state) == (
        1,
        "notes",
        RowState.IMPORTED_WITH_WARNINGS,
    )
    assert "100 KB" in warning.reason and len(warning.value) < 300
    assert chunk.warned == [True, False]
    rejected = validate_chunk(
        df, mapping, default_region="US", segment="seg", on_invalid_field="reject_row"
    )
    assert [(r.row, r.state) for r in rejected.rejects] == [(1, RowState.INVALID)]


def test_shared_identifiers_go_without_whatever_the_policy() -> None:
    import numpy as np

    df = _frame(email=["a@x.com", "b@x.com", "c@x.com"], phone=["+14155550123"] * 2 + ["12"])
    mapping = Mapping(email="email", phone_number="phone")
    shared = {"phone_number": np.array([True, True, False])}
    for policy in ("drop_field", "reject_row"):
        chunk = validate_chunk(
            df, mapping, default_region="US", segment="s", on_invalid_field=policy, shared=shared
        )
        sent = [orjson.loads(p)["attributes"] for p in chunk.payloads]
        assert [p.get("phone_number") for p in sent][:2] == [None, None]
        shared_warnings = [w for w in chunk.warnings if "shared" in w.reason]
        assert [(w.row, w.value) for w in shared_warnings] == [
            (1, "+14155550123"),
            (2, "+14155550123"),
        ]
        assert shared_warnings[0].reason == (
            "phone number is shared with another customer's email in this export; sent without it"
        )
    assert chunk.rows == [1, 2]  # reject_row: the bad phone's row is out, the shared ones not
