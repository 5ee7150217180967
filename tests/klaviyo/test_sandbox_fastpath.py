"""The sandbox's columnar fast path (sandbox/fastpath.py) only accepts what the per-row code
accepts, and applies a job exactly as the per-row code would."""

from __future__ import annotations

from typing import Any

import orjson
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.sandbox import bulk, fastpath
from klaviyo_tui.sandbox.phones import E164_RE, _regions, classify, country_code
from klaviyo_tui.sandbox.phones import surely_valid_lines as phone_lines
from klaviyo_tui.sandbox.store import Store


def _phone(i: int) -> str | None:
    """US, DE, GB, Jersey (a later claimant of +44) or none, distinct for i < 10."""
    heads = ["+1415555010", "+49308620974", "+44740012345", "+44793738029", None]
    head = heads[i % len(heads)]
    return None if head is None else f"{head}{i}"


def _rows(n: int = 8) -> list[dict[str, Any]]:
    return [
        {
            "type": "profile",
            "attributes": {
                "email": f"user{i}@Example.com",
                **({"phone_number": p} if (p := _phone(i)) else {}),
                "first_name": "Ada",
                "properties": {"ltv": 1.5, "orders": i, "tags": ["a"]},
            },
        }
        for i in range(n)
    ]


def _doc(rows: list[Any]) -> dict[str, Any]:
    data = {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": rows}}}
    return {"data": data}


def _per_row_ok(rows: list[Any], regions: frozenset[str] | None) -> bool:
    drops: list[int] = []
    problems = [bulk.check_row(i, r, regions, drops) for i, r in enumerate(rows)]
    sizes = all(len(orjson.dumps(r)) <= bulk.MAX_PROFILE_BYTES for r in rows)
    return not any(problems) and not drops and sizes


def _attrs(**attrs: Any) -> dict[str, Any]:
    return {"type": "profile", "attributes": {"email": "odd@example.com", **attrs}}


ODD_ROWS: list[tuple[Any, bool]] = [  # (row, fast path expected)
    (_attrs(external_id=""), True),
    (_attrs(phone_number="+447937380290", title="Dr"), True),  # Jersey: a later claimant
    (_attrs(email="A.B+tag@Sub.Example.co.uk"), True),
    (_attrs(email="bad@@example.com"), False),
    (_attrs(email="a@b.co\n"), False),
    (_attrs(email="a\n@b.co"), False),
    (_attrs(email=None), False),
    (_attrs(email=5), False),
    (_attrs(first_name=None), False),
    (_attrs(first_name=7), False),
    (_attrs(first_name={"x": 1}), False),
    (_attrs(properties=[1]), False),
    (_attrs(properties={"gone": None}), False),
    (_attrs(properties={"note": "null", "deep": {"x": None}}), True),  # kept as sent
    (_attrs(location={"city": "Paris"}), False),
    (_attrs(nickname="x"), False),
    (_attrs(phone_number="+1234"), False),  # dropped: per row
    (_attrs(phone_number="+19999999999"), False),
    (_attrs(phone_number="+14155550101\n"), False),
    (_attrs(phone_number="+80012345678"), True),  # non-geographic: settled one by one
    (_attrs(properties={"big": "x" * bulk.MAX_PROFILE_BYTES}), False),
    ({"type": "profile", "id": "01ABC", "attributes": {"email": "id@example.com"}}, False),
    ({"type": "profile", "attributes": {"email": "m@example.com"}, "meta": {}}, False),
    ({"type": "person", "attributes": {"email": "p@example.com"}}, False),
    ({"type": "profile", "attributes": {"phone_number": "+14155550199"}}, False),
    ("profile", False),
    ("ab", False),
    (["type", "attributes"], False),
    (5, False),
    (_attrs(first_name={"a": 1}, properties="x"), False),  # a dict, but not at properties
    (_attrs(properties={"a": [None]}), True),  # nested nulls are kept as sent
    (_attrs(properties={"a": [{"b": 1}, {"c": 2}]}), False),  # "},{" in a row: per row
    (_attrs(first_name="},{"), False),
    (_attrs(first_name="}{,"), True),
]


@pytest.mark.parametrize("regions", [None, frozenset({"US", "DE", "GB"}), frozenset({"US"})])
@pytest.mark.parametrize(("row", "fast"), ODD_ROWS)
def test_fast_path_accepts_only_what_the_per_row_check_accepts(
    row: Any, fast: bool, regions: frozenset[str] | None
) -> None:
    rows = _rows()
    rows.insert(3, row)
    plain = fastpath.plain(_doc(rows), True, regions)
    if plain is not None:
        assert _per_row_ok(rows, regions)
    if regions is None:
        assert (plain is not None) == fast
        assert _per_row_ok(rows, regions) or not fast


def test_a_plain_job_takes_the_fast_path() -> None:
    plain = fastpath.plain(_doc(_rows()), True, None)
    assert plain is not None
    assert plain.emails[0] == "user0@Example.com"
    assert plain.phones[:5] == [_phone(i) for i in range(5)]
    assert plain.packed(1) == orjson.dumps(_rows()[1]["attributes"])
    assert plain.packed(7) == orjson.dumps(_rows()[7]["attributes"])
    assert plain.rows() == _rows()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab.@-_+Z9é\n", min_size=0, max_size=12), min_size=1))
def test_email_column_check_matches_exactly_what_email_re_matches(emails: list[str]) -> None:
    expected = all("\n" not in e and bulk.EMAIL_RE.match(e) for e in emails)
    assert fastpath._emails_ok(emails) == expected


_LOCAL = r"[A-Za-z0-9!#'+_-]{0,6}(?:\.[A-Za-z0-9~é]{0,3}){0,2}"
_DOMAIN = r"(?:[A-Za-z0-9][A-Za-z0-9é-]{0,3}\.){0,3}[A-Za-z0-9K]{0,3}"  # K: Kelvin, not ASCII


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.from_regex(rf"{_LOCAL}@{_DOMAIN}(@{_DOMAIN})?", fullmatch=True) | st.text(max_size=14),
        min_size=1,
        max_size=4,
    )
)
def test_email_column_check_matches_email_re_on_address_like_text(emails: list[str]) -> None:
    """RE2 (the column check) and sre (the per-row check) agree, lengths and "@" included."""
    expected = all("\n" not in e and bulk.EMAIL_RE.match(e) for e in emails)
    assert fastpath._emails_ok(emails) == expected


@pytest.mark.parametrize(
    "email",
    [
        "a" * 64 + "@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 63 + ".com",
        "a@" + "b" * 64 + ".com",
        "abc@" + ".".join(["b" * 61] * 4) + ".co",  # 254 characters
        "abcd@" + ".".join(["b" * 61] * 4) + ".co",  # 255
        "a@b.c",
        "@b.co",
        "a@b.co@c.co",
        "a\ud800@b.co",  # a lone surrogate: no UTF-8 for pyarrow, no email for EMAIL_RE
        "a@b.co\r",
        "ab@c.k\u212a",
    ],
)
def test_email_column_check_keeps_email_re_length_rules(email: str) -> None:
    assert fastpath._emails_ok([email, "ok@example.com"]) == bool(bulk.EMAIL_RE.match(email))


def _example_numbers() -> list[str]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(11):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                cc = str(number.country_code)
                nsn = e164[1 + len(cc) :]
                out += [e164, e164[:-1], e164 + "5", f"+{cc}0{nsn}", f"+{cc}{nsn[:2]}0{nsn[3:]}"]
    return [n for n in out if E164_RE.match(n)]


def test_phone_lines_accept_only_numbers_classify_finds_valid_in_the_first_region() -> None:
    numbers = _example_numbers()
    by_cc: dict[int, list[str]] = {}
    for number in numbers:
        cc = country_code(number)
        assert cc is not None
        by_cc.setdefault(cc, []).append(number)
    matched = 0
    for cc, group in by_cc.items():
        lines = phone_lines(frozenset({cc}), None)
        regions = _regions(cc)
        if lines is None:
            assert regions is None
            continue
        assert regions is not None
        for number in group:
            if lines.fullmatch("\n" + number):
                matched += 1
                assert classify(number) == (True, regions[0][0]), number
    assert matched > len(numbers) // 4  # the fast path settles most valid numbers


def _apply(jobs: list[list[dict[str, Any]]], fast: bool) -> tuple[Store, list[Any]]:
    store = Store("Sandbox", 7, 0.0)
    rec = store.create_list("L", "single_opt_in", 1_000.0)
    done = []
    for k, rows in enumerate(jobs):
        now = 2_000.0 + k
        job = store.create_job(rows, [rec.id], frozenset(), now)
        if fast:  # as the handler does: the job keeps only the columns
            job.payload, job.plain = None, fastpath.plain(_doc(rows), True, None)
            assert job.plain is not None
        store.tick(now + 1)
        errors = [{**e, "id": "-"} for e in job.errors]
        done.append((job.completed_count, job.failed_count, job.profile_positions, errors))
    return store, done


def test_fast_apply_leaves_the_store_as_the_row_by_row_apply_does() -> None:
    first = _rows(6)
    again = _rows(9)[4:]  # two rows repeat existing emails: row by row
    twice = [
        {"type": "profile", "attributes": {"email": f"n{i}@example.com", "phone_number": p}}
        for i, p in enumerate(["+14155550177", "+14155550177"])  # same phone within the job
    ]
    fresh = [{"type": "profile", "attributes": {"email": "z@example.com", "external_id": ""}}]
    jobs = [first, again, twice, fresh]
    fast_store, fast_jobs = _apply(jobs, fast=True)
    slow_store, slow_jobs = _apply(jobs, fast=False)
    assert fast_jobs == slow_jobs
    assert fast_jobs[2][1] == 1  # the shared phone failed the second row
    assert list(fast_store.blobs) == list(slow_store.blobs)
    assert len(fast_store.blobs) == 11
    assert fast_store.by_email == slow_store.by_email
    assert fast_store.by_phone == slow_store.by_phone
    assert fast_store.by_external == slow_store.by_external == {"": 10}
    (fast_list,), (slow_list,) = fast_store.lists.values(), slow_store.lists.values()
    assert fast_list.members == slow_list.members
    assert fast_list.order == slow_list.order
    assert fast_list.joined == slow_list.joined
    assert fast_list.updated == slow_list.updated
