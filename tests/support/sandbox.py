"""Shared helpers for tests that talk to the sandbox over loopback (public API only)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from klaviyo_tui.sandbox import DEMO_KEY

REVISION = "2026-07-15"
RETRYABLE = {429, 500, 502, 503}


def headers(key: str = DEMO_KEY, revision: str = REVISION) -> dict[str, str]:
    return {
        "Authorization": f"Klaviyo-API-Key {key}",
        "revision": revision,
        "Accept": "application/vnd.api+json",
        "Content-Type": "application/vnd.api+json",
    }


def client(base_url: str, key: str = DEMO_KEY, timeout: float = 10, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=headers(key), timeout=timeout, **kwargs)


def _get(c: httpx.Client, url: str, params: dict[str, str] | None = None) -> httpx.Response:
    """GET with patience for throttling and injected faults (the sandbox may be faulty)."""
    for _ in range(100):
        try:
            r = c.get(url, params=params)
        except httpx.TransportError:
            continue
        if r.status_code in RETRYABLE or (
            r.status_code == 403 and "json" not in r.headers.get("content-type", "")
        ):
            time.sleep(float(r.headers.get("Retry-After", "0")) if r.status_code == 429 else 0)
            continue
        return r
    raise AssertionError(f"GET {url} kept failing")


def list_members(base_url: str, list_id: str, key: str = DEMO_KEY) -> list[dict[str, Any]]:
    """Every member of a list (profile resources with joined_group_at), following links.next."""
    out: list[dict[str, Any]] = []
    with client(base_url, key) as c:
        url: str | None = f"/api/lists/{list_id}/profiles"
        params: dict[str, str] | None = {"page[size]": "100"}
        while url:
            r = _get(c, url, params)
            r.raise_for_status()
            body = r.json()
            out += body["data"]
            url, params = body["links"].get("next"), None
    return out


def member_emails(base_url: str, list_id: str, key: str = DEMO_KEY) -> set[str]:
    return {m["attributes"]["email"] for m in list_members(base_url, list_id, key)}


def create_list(c: httpx.Client, name: str) -> str:
    r = c.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}})
    assert r.status_code == 201, r.text
    list_id: str = r.json()["data"]["id"]
    return list_id


def import_body(profiles: list[dict[str, Any]], list_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "profile-bulk-import-job",
        "attributes": {
            "profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}
        },
    }
    if list_id is not None:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return {"data": data}


def wait_job(c: httpx.Client, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll the job through the API until it is complete; return its resource."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = _get(c, f"/api/profile-bulk-import-jobs/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()["data"]
        if job["attributes"]["status"] == "complete":
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not complete")


def run_import(
    c: httpx.Client, profiles: list[dict[str, Any]], list_id: str | None = None
) -> dict[str, Any]:
    """Submit a bulk import job (it must be accepted) and return it once complete."""
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(profiles, list_id))
    assert r.status_code == 202, r.text
    return wait_job(c, r.json()["data"]["id"])


def import_errors(c: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every import error of a job, following links.next."""
    out: list[dict[str, Any]] = []
    url: str | None = f"/api/profile-bulk-import-jobs/{job_id}/import-errors?page[size]=100"
    while url:
        body = _get(c, url).json()
        out += body["data"]
        url = body["links"].get("next")
    return out


def subscribe_body(
    profiles: list[dict[str, Any]],
    list_id: str | None = None,
    historical: bool | None = None,
    job_type: str = "profile-subscription-bulk-create-job",
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}
    }
    if historical is not None:
        attrs["historical_import"] = historical
    data: dict[str, Any] = {"type": job_type, "attributes": attrs}
    if list_id is not None:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def email_consent(consented_at: str | None = None) -> dict[str, Any]:
    marketing: dict[str, Any] = {"consent": "SUBSCRIBED"}
    if consented_at is not None:
        marketing["consented_at"] = consented_at
    return {"email": {"marketing": marketing}}


def profile_attribute(base_url: str, email: str, name: str) -> object:
    """One attribute of the profile with this email (which must exist)."""
    with client(base_url) as c:
        profile = profile_by_email(c, email)
    assert profile is not None
    return profile["attributes"].get(name)


def profile_by_email(c: httpx.Client, email: str) -> dict[str, Any] | None:
    """The profile with this email (with its subscriptions), or None."""
    r = _get(
        c,
        "/api/profiles",
        {"filter": f'equals(email,"{email}")', "additional-fields[profile]": "subscriptions"},
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data[0] if data else None
