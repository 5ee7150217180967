"""The `revision` header like the live API: malformed, future, too early, absent, retired."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from klaviyo_tui.sandbox import SandboxServer, SandboxSettings
from klaviyo_tui.sandbox.error_responses import ApiError
from klaviyo_tui.sandbox.revisions import resolve
from tests.support.sandbox import headers, import_body


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0)) as s:
        yield s


def _get(server: SandboxServer, revision: str, path: str = "/api/lists") -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", headers=headers(revision=revision))


@pytest.mark.parametrize("revision", ["2026-13-01", "2026-7-15", "v2026-07-15", "2025-08-01.pre"])
def test_malformed_revision_is_400(server: SandboxServer, revision: str) -> None:
    r = _get(server, revision)
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"parameter": "revision"}


def test_future_revision_is_404(server: SandboxServer) -> None:
    tomorrow = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    r = _get(server, tomorrow)
    assert r.status_code == 404
    assert r.json()["errors"][0]["detail"] == "Unable to specify a future revision date."


def test_endpoint_absent_in_revision_is_404(server: SandboxServer) -> None:
    """Bulk import went GA in 2023-12-15: an earlier revision does not have the method."""
    r = httpx.post(
        f"{server.base_url}/api/profile-bulk-import-jobs",
        headers=headers(revision="2023-10-15"),
        json=import_body([{"email": "r@example.com"}]),
    )
    assert r.status_code == 404
    assert r.json()["errors"][0]["detail"].startswith("No valid revisions found for method")


def test_retired_revision_is_410(server: SandboxServer) -> None:
    r = _get(server, "2023-10-15")
    assert r.status_code == 410
    assert r.json()["errors"][0]["status"] == 410


def test_past_non_release_date_resolves_to_earlier_release(server: SandboxServer) -> None:
    assert _get(server, "2026-08-01").status_code == 200
    assert _get(server, "2026-07-15.pre").status_code == 200
    assert resolve("2026-08-01", "get_lists", date(2026, 12, 1)) == "2026-07-15"
    assert resolve("2025-01-14", "get_lists", date(2025, 6, 1)) == "2024-10-15"


def test_retirement_follows_the_two_year_policy() -> None:
    assert resolve("2024-10-20", "get_lists", date(2026, 10, 14)) == "2024-10-15"
    with pytest.raises(ApiError) as info:
        resolve("2024-10-20", "get_lists", date(2026, 10, 16))
    assert info.value.status == 410
    with pytest.raises(ApiError) as early:
        resolve("2019-01-01", "get_lists", date(2026, 10, 16))
    assert early.value.status == 400
    assert "2022-10-17" in early.value.errors[0]["detail"]
