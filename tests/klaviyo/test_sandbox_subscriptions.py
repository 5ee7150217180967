"""Bulk subscribe / unsubscribe jobs over loopback: validation, delayed effect, consent state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from klaviyo_tui.sandbox import SandboxServer, SandboxSettings
from tests.support.sandbox import (
    client,
    create_list,
    email_consent,
    member_emails,
    profile_by_email,
    subscribe_body,
)

SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "/api/profile-subscription-bulk-delete-jobs"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0)) as s:
        yield s


@pytest.fixture
def c(server: SandboxServer) -> Iterator[httpx.Client]:
    with client(server.base_url) as cl:
        yield cl


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def _marketing(c: httpx.Client, email: str) -> dict[str, Any]:
    found = profile_by_email(c, email)
    assert found is not None, email
    marketing: dict[str, Any] = found["attributes"]["subscriptions"]["email"]["marketing"]
    return marketing


def _double_opt_in_list(c: httpx.Client, name: str) -> str:
    body = {
        "data": {"type": "list", "attributes": {"name": name, "opt_in_process": "double_opt_in"}}
    }
    r = c.post("/api/lists", json=body)
    assert r.status_code == 201
    list_id: str = r.json()["data"]["id"]
    return list_id


def test_subscribe_answers_202_without_body_and_applies_later() -> None:
    with (
        SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.3)) as s,
        client(s.base_url) as c,
    ):
        list_id = create_list(c, "Later")
        rows = [{"email": "later@example.com", "subscriptions": email_consent()}]
        r = c.post(SUBSCRIBE, json=subscribe_body(rows, list_id))
        assert r.status_code == 202
        assert r.content == b""
        assert profile_by_email(c, "later@example.com") is None  # not applied yet
        deadline = time.monotonic() + 10
        while profile_by_email(c, "later@example.com") is None:
            assert time.monotonic() < deadline, "the subscription never landed"
        assert _marketing(c, "later@example.com")["consent"] == "SUBSCRIBED"
        assert member_emails(s.base_url, list_id) == {"later@example.com"}


def test_subscribe_sets_consent_and_membership(server: SandboxServer, c: httpx.Client) -> None:
    list_id = create_list(c, "Single")
    rows = [
        {"email": "sub1@example.com", "subscriptions": email_consent()},
        {
            "email": "sub2@example.com",
            "phone_number": "+14155550141",
            "subscriptions": {**email_consent(), "sms": {"marketing": {"consent": "SUBSCRIBED"}}},
        },
    ]
    assert c.post(SUBSCRIBE, json=subscribe_body(rows, list_id)).status_code == 202
    assert member_emails(server.base_url, list_id) == {"sub1@example.com", "sub2@example.com"}
    marketing = _marketing(c, "sub1@example.com")
    assert marketing["consent"] == "SUBSCRIBED"
    assert marketing["can_receive_email_marketing"] is True
    found = profile_by_email(c, "sub2@example.com")
    assert found is not None
    sms = found["attributes"]["subscriptions"]["sms"]["marketing"]
    assert sms["consent"] == "SUBSCRIBED" and sms["can_receive_sms_marketing"] is True


def test_double_opt_in_pending_unless_historical(server: SandboxServer, c: httpx.Client) -> None:
    list_id = _double_opt_in_list(c, "Double")
    rows = [{"email": "dbl@example.com", "subscriptions": email_consent()}]
    assert c.post(SUBSCRIBE, json=subscribe_body(rows, list_id)).status_code == 202
    assert _marketing(c, "dbl@example.com")["consent"] == "NEVER_SUBSCRIBED"
    assert member_emails(server.base_url, list_id) == set()
    old = _ago(30)
    rows = [{"email": "dbl@example.com", "subscriptions": email_consent(old)}]
    body = subscribe_body(rows, list_id, historical=True)
    assert c.post(SUBSCRIBE, json=body).status_code == 202
    marketing = _marketing(c, "dbl@example.com")
    assert marketing["consent"] == "SUBSCRIBED"
    assert datetime.fromisoformat(marketing["consent_timestamp"]) == datetime.fromisoformat(old)
    assert member_emails(server.base_url, list_id) == {"dbl@example.com"}


def _errors(r: httpx.Response) -> list[tuple[str, str]]:
    assert r.status_code == 400, r.text
    return [(e["source"].get("pointer", ""), e["detail"]) for e in r.json()["errors"]]


def test_subscribe_validation(c: httpx.Client) -> None:
    row0 = "/data/attributes/profiles/data/0/attributes"
    bad_field = [{"email": "v@example.com", "first_name": "V", "subscriptions": email_consent()}]
    assert _errors(c.post(SUBSCRIBE, json=subscribe_body(bad_field))) == [
        (f"{row0}/first_name", "'first_name' is not a valid field for the resource 'profile'.")
    ]
    no_history = [{"email": "v@example.com", "subscriptions": email_consent(_ago(1))}]
    ((pointer, _),) = _errors(c.post(SUBSCRIBE, json=subscribe_body(no_history)))
    assert pointer == f"{row0}/subscriptions/email/marketing/consented_at"
    missing = [{"email": "v@example.com", "subscriptions": email_consent()}]
    ((pointer, _),) = _errors(c.post(SUBSCRIBE, json=subscribe_body(missing, historical=True)))
    assert pointer == f"{row0}/subscriptions/email/marketing/consented_at"
    future = [{"email": "v@example.com", "subscriptions": email_consent(_ago(-1))}]
    ((pointer, detail),) = _errors(c.post(SUBSCRIBE, json=subscribe_body(future, historical=True)))
    assert pointer.endswith("/consented_at") and "past" in detail
    r = c.post(SUBSCRIBE, json=subscribe_body(missing, "NoSuch"))
    assert _errors(r) == [("/data/relationships/list/data/id", "List ID NoSuch does not exist.")]
    too_many = [
        {"email": f"m{i}@example.com", "subscriptions": email_consent()} for i in range(1001)
    ]
    assert c.post(SUBSCRIBE, json=subscribe_body(too_many)).status_code == 400
    assert profile_by_email(c, "v@example.com") is None  # nothing applied


def test_backdated_consent_older_than_unsubscribe_is_refused(c: httpx.Client) -> None:
    rows = [{"email": "back@example.com", "subscriptions": email_consent()}]
    assert c.post(SUBSCRIBE, json=subscribe_body(rows)).status_code == 202
    unsub = [
        {
            "email": "back@example.com",
            "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
        }
    ]
    body = subscribe_body(unsub, job_type="profile-subscription-bulk-delete-job")
    assert c.post(UNSUBSCRIBE, json=body).status_code == 202
    marketing = _marketing(c, "back@example.com")
    assert marketing["consent"] == "UNSUBSCRIBED"
    assert marketing["can_receive_email_marketing"] is False
    assert [s["reason"] for s in marketing["suppression"]] == ["UNSUBSCRIBE"]
    old = [{"email": "back@example.com", "subscriptions": email_consent(_ago(10))}]
    ((pointer, _),) = _errors(c.post(SUBSCRIBE, json=subscribe_body(old, historical=True)))
    assert (
        pointer
        == "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at"
    )
    # a fresh subscription lifts the UNSUBSCRIBE suppression
    assert c.post(SUBSCRIBE, json=subscribe_body(rows)).status_code == 202
    marketing = _marketing(c, "back@example.com")
    assert marketing["consent"] == "SUBSCRIBED"
    assert marketing["suppression"] == []
    assert marketing["can_receive_email_marketing"] is True


def test_subscribe_phone_and_identity_rules() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, sms_regions=frozenset({"US"}))
    with SandboxServer(settings) as s, client(s.base_url) as c:
        sms = {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}
        rows = [
            {"email": "a1@example.com", "phone_number": "+14155550151", "subscriptions": sms},
            {"phone_number": "+442079460018", "subscriptions": sms},
            {"phone_number": "+1234", "subscriptions": sms},
        ]
        errors = _errors(c.post(SUBSCRIBE, json=subscribe_body(rows)))
        assert [p for p, _ in errors] == [
            "/data/attributes/profiles/data/1/attributes/phone_number",
            "/data/attributes/profiles/data/2/attributes/phone_number",
        ]
        assert "not in a supported region" in errors[0][1]
        assert c.post(SUBSCRIBE, json=subscribe_body(rows[:1])).status_code == 202
        clash = [{"email": "a2@example.com", "phone_number": "+14155550151", "subscriptions": sms}]
        ((pointer, detail),) = _errors(c.post(SUBSCRIBE, json=subscribe_body(clash)))
        assert pointer.endswith("/phone_number") and "different profile" in detail


def test_subscribe_needs_the_subscriptions_scope(server: SandboxServer) -> None:
    key = "pk_" + "w" * 34
    app = server.app
    app.keys[key] = frozenset({"lists:write", "profiles:write"})
    with client(server.base_url, key) as c:
        assert c.post(SUBSCRIBE, content=b"").status_code == 403
