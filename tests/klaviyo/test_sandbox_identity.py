"""Bulk import identity and phone rules over loopback: no silent merges, live phone handling."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from klaviyo_tui.sandbox import SandboxServer, SandboxSettings
from tests.support.sandbox import (
    client,
    create_list,
    import_body,
    import_errors,
    member_emails,
    profile_by_email,
    run_import,
)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0)) as s:
        yield s


@pytest.fixture
def c(server: SandboxServer) -> Iterator[httpx.Client]:
    with client(server.base_url) as cl:
        yield cl


def test_same_phone_different_email_across_jobs_fails_the_row(
    server: SandboxServer, c: httpx.Client
) -> None:
    list_id = create_list(c, "Merge across jobs")
    run_import(c, [{"email": "ann@example.com", "phone_number": "+14155550101"}], list_id)
    rows = [
        {"email": "bob@example.com", "phone_number": "+14155550101", "first_name": "Bob"},
        {"email": "cat@example.com"},
    ]
    job = run_import(c, rows, list_id)
    assert job["attributes"]["completed_count"] == 1
    assert job["attributes"]["failed_count"] == 1
    (error,) = import_errors(c, job["id"])
    attrs = error["attributes"]
    assert attrs["code"] == "duplicate_profile"
    assert "+14155550101" in attrs["detail"]
    assert attrs["source"] == {"pointer": "/data/attributes/phone_number"}
    assert attrs["original_payload"] == rows[0]
    assert member_emails(server.base_url, list_id) == {"ann@example.com", "cat@example.com"}
    ann = profile_by_email(c, "ann@example.com")
    assert ann is not None
    assert ann["attributes"]["phone_number"] == "+14155550101"
    assert profile_by_email(c, "bob@example.com") is None


def test_same_phone_within_one_job_second_row_fails(server: SandboxServer, c: httpx.Client) -> None:
    list_id = create_list(c, "Merge within a job")
    rows = [
        {"email": "dan@example.com", "phone_number": "+14155550102"},
        {"email": "eve@example.com", "phone_number": "+14155550102"},
        {"email": "fay@example.com", "external_id": "X-1"},
        {"email": "gus@example.com", "external_id": "X-1"},
    ]
    job = run_import(c, rows, list_id)
    assert job["attributes"]["failed_count"] == 2
    errors = import_errors(c, job["id"])
    assert [e["attributes"]["original_payload"]["email"] for e in errors] == [
        "eve@example.com",
        "gus@example.com",
    ]
    assert [e["attributes"]["source"]["pointer"] for e in errors] == [
        "/data/attributes/phone_number",
        "/data/attributes/external_id",
    ]
    assert "X-1" in errors[1]["attributes"]["detail"]
    assert member_emails(server.base_url, list_id) == {"dan@example.com", "fay@example.com"}


def test_existing_email_with_another_profiles_phone_fails(c: httpx.Client) -> None:
    run_import(c, [{"email": "hal@example.com", "phone_number": "+14155550103"}])
    run_import(c, [{"email": "ida@example.com"}])
    job = run_import(c, [{"email": "ida@example.com", "phone_number": "+14155550103"}])
    assert job["attributes"]["failed_count"] == 1
    ida = profile_by_email(c, "ida@example.com")
    assert ida is not None and ida["attributes"]["phone_number"] is None


def test_phone_only_profile_gains_an_email(c: httpx.Client) -> None:
    """Nobody is lost when a profile without an email gets one: that is an update."""
    run_import(c, [{"phone_number": "+14155550104", "first_name": "Jo"}])
    job = run_import(c, [{"email": "jo@example.com", "phone_number": "+14155550104"}])
    assert job["attributes"]["failed_count"] == 0
    jo = profile_by_email(c, "jo@example.com")
    assert jo is not None
    assert jo["attributes"]["first_name"] == "Jo"


def test_same_email_updates_phone(c: httpx.Client) -> None:
    run_import(c, [{"email": "kim@example.com", "phone_number": "+14155550105"}])
    job = run_import(c, [{"email": "KIM@example.com", "phone_number": "+14155550106"}])
    assert job["attributes"]["failed_count"] == 0
    kim = profile_by_email(c, "kim@example.com")
    assert kim is not None and kim["attributes"]["phone_number"] == "+14155550106"


@pytest.mark.parametrize("phone", ["+1234", "12", "+19999999999", "not a phone"])
def test_invalid_phone_is_dropped_and_profile_imported(
    server: SandboxServer, c: httpx.Client, phone: str
) -> None:
    list_id = create_list(c, f"Phones {phone}")
    email = f"p{abs(hash(phone)) % 10**8}@example.com"
    job = run_import(c, [{"email": email, "phone_number": phone}], list_id)
    assert job["attributes"]["completed_count"] == 1
    assert job["attributes"]["failed_count"] == 0
    assert member_emails(server.base_url, list_id) == {email}
    found = profile_by_email(c, email)
    assert found is not None and found["attributes"]["phone_number"] is None


def test_invalid_phone_as_only_identifier_is_a_400(c: httpx.Client) -> None:
    r = c.post("/api/profile-bulk-import-jobs", json=import_body([{"phone_number": "+1234"}]))
    assert r.status_code == 400
    (err,) = r.json()["errors"]
    assert err["source"]["pointer"] == "/data/attributes/profiles/data/0/attributes/phone_number"


def test_phone_outside_sms_regions_is_a_400() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, sms_regions=frozenset({"US"}))
    with SandboxServer(settings) as s, client(s.base_url) as c:
        rows = [
            {"email": "us@example.com", "phone_number": "+14155550107"},
            {"email": "uk@example.com", "phone_number": "+442079460018"},
        ]
        r = c.post("/api/profile-bulk-import-jobs", json=import_body(rows))
        assert r.status_code == 400
        (err,) = r.json()["errors"]
        assert err["source"]["pointer"] == (
            "/data/attributes/profiles/data/1/attributes/phone_number"
        )
        assert err["detail"] == (
            "Phone number is valid but is not in a supported region for this account"
        )
        assert c.get("/api/profile-bulk-import-jobs").json()["data"] == []  # no job
        assert run_import(c, rows[:1])["attributes"]["completed_count"] == 1


def test_sms_regions_setting_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError, match="unknown SMS region"):
        SandboxSettings(sms_regions=frozenset({"XX"}))


def test_unknown_list_is_400_at_data(c: httpx.Client) -> None:
    r = c.post("/api/profile-bulk-import-jobs", json=import_body([{"email": "l@x.com"}], "NoSuch"))
    assert r.status_code == 400
    (err,) = r.json()["errors"]
    assert err["source"] == {"pointer": "/data"}
    assert err["detail"] == "List ID NoSuch does not exist."
