"""The sandbox's operations table matches the official OpenAPI spec (scopes, rate limits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from klaviyo_tui.sandbox.operations import OPERATIONS, match

SPEC = (Path(__file__).parents[2] / "../shared/klaviyo-openapi/stable.json").resolve()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"OpenAPI spec not found at {SPEC}; table check needs the shared spec")
    loaded: dict[str, Any] = json.loads(SPEC.read_text())
    return loaded


def _rate(text: str) -> int:
    return int(text.split("/")[0])


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.operation_id)
def test_operation_matches_spec(op: Any, spec: dict[str, Any]) -> None:
    entry = spec["paths"][op.path][op.method.lower()]
    assert entry["operationId"] == op.operation_id
    assert frozenset(entry["x-klaviyo-scopes"]) == op.scopes
    limits = entry["x-klaviyo-ratelimit"]
    assert _rate(limits["burst"]) == op.burst
    assert _rate(limits["steady"]) == op.steady
    assert (_rate(limits["daily"]) if "daily" in limits else None) == op.daily


def test_match_accepts_trailing_slash_and_reports_wrong_method() -> None:
    op, params, _ = match("GET", "/api/lists/abc123/")
    assert op is not None
    assert op.operation_id == "get_list"
    assert params == {"id": "abc123"}
    assert match("PUT", "/api/lists") == (None, {}, True)
    assert match("GET", "/api/nothing") == (None, {}, False)


def test_sync_operations_are_routed() -> None:
    """The segment-sync endpoints share paths with older operations; each method finds its own."""
    routes = {
        ("GET", "/api/lists/abc123/relationships/profiles"): "get_profile_ids_for_list",
        ("DELETE", "/api/lists/abc123/relationships/profiles/"): "remove_profiles_from_list",
        ("GET", "/api/profiles"): "get_profiles",
        ("GET", "/api/profiles/01ABC/"): "get_profile",
        ("POST", "/api/profile-subscription-bulk-create-jobs"): "bulk_subscribe_profiles",
        ("POST", "/api/profile-subscription-bulk-delete-jobs/"): "bulk_unsubscribe_profiles",
    }
    for (method, path), op_id in routes.items():
        op, _, _ = match(method, path)
        assert op is not None and op.operation_id == op_id, (method, path)
    assert match("DELETE", "/api/profiles/01ABC") == (None, {}, True)  # 405, not 404
