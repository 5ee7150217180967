"""The operations the sandbox serves, with scopes and rate limits copied from the spec.

The OpenAPI file is not shipped with the package, so the figures live here as data;
`tests/klaviyo/test_sandbox_operations.py` checks them against the spec whenever it is present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    """One spec operation: what it needs (scopes) and how often it may be called (per account)."""

    method: str
    path: str  # template as in the spec, e.g. "/api/lists/{id}"
    operation_id: str
    scopes: frozenset[str]
    burst: int  # per 1 s window
    steady: int  # per 60 s window
    daily: int | None = None  # per UTC day, when the spec names one

    @property
    def windows(self) -> tuple[tuple[int, int], ...]:
        """(limit, window seconds) pairs, shortest window first."""
        base = ((self.burst, 1), (self.steady, 60))
        return (*base, (self.daily, 86400)) if self.daily else base


def _op(
    method: str,
    path: str,
    op_id: str,
    scopes: str,
    burst: int,
    steady: int,
    daily: int | None = None,
) -> Operation:
    return Operation(method, path, op_id, frozenset(scopes.split()), burst, steady, daily)


OPERATIONS: tuple[Operation, ...] = (
    _op("GET", "/api/accounts", "get_accounts", "accounts:read", 1, 15),
    _op("GET", "/api/lists", "get_lists", "lists:read", 75, 750),
    _op("POST", "/api/lists", "create_list", "lists:write", 10, 150, 150),
    _op("GET", "/api/lists/{id}", "get_list", "lists:read", 75, 750),
    _op("DELETE", "/api/lists/{id}", "delete_list", "lists:write", 10, 150),
    _op(
        "GET",
        "/api/lists/{id}/profiles",
        "get_profiles_for_list",
        "lists:read profiles:read",
        75,
        750,
    ),
    _op(
        "GET",
        "/api/lists/{id}/relationships/profiles",
        "get_profile_ids_for_list",
        "lists:read profiles:read",
        75,
        750,
    ),
    _op(
        "POST",
        "/api/lists/{id}/relationships/profiles",
        "add_profiles_to_list",
        "lists:write profiles:write",
        10,
        150,
    ),
    _op(
        "DELETE",
        "/api/lists/{id}/relationships/profiles",
        "remove_profiles_from_list",
        "lists:write profiles:write",
        10,
        150,
    ),
    _op(
        "GET",
        "/api/profile-bulk-import-jobs",
        "get_bulk_import_profiles_jobs",
        "lists:read profiles:read",
        10,
        150,
    ),
    _op(
        "POST",
        "/api/profile-bulk-import-jobs",
        "bulk_import_profiles",
        "lists:write profiles:write",
        10,
        150,
    ),
    _op(
        "GET",
        "/api/profile-bulk-import-jobs/{job_id}",
        "get_bulk_import_profiles_job",
        "lists:read profiles:read",
        10,
        150,
    ),
    _op(
        "GET",
        "/api/profile-bulk-import-jobs/{id}/import-errors",
        "get_errors_for_bulk_import_profiles_job",
        "profiles:read",
        10,
        150,
    ),
    _op("GET", "/api/profiles", "get_profiles", "profiles:read", 75, 750),
    _op("GET", "/api/profiles/{id}", "get_profile", "profiles:read", 75, 750),
    _op(
        "POST",
        "/api/profile-subscription-bulk-create-jobs",
        "bulk_subscribe_profiles",
        "lists:write profiles:write subscriptions:write",
        75,
        750,
    ),
    _op(
        "POST",
        "/api/profile-subscription-bulk-delete-jobs",
        "bulk_unsubscribe_profiles",
        "lists:write profiles:write subscriptions:write",
        75,
        750,
    ),
)

BY_ID: dict[str, Operation] = {op.operation_id: op for op in OPERATIONS}


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}/?$")


_ROUTES: tuple[tuple[re.Pattern[str], Operation], ...] = tuple(
    (_compile(op.path), op) for op in OPERATIONS
)


def match(method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
    """Find the operation for a request: (operation, path params, path_exists).

    `path_exists` is True when some operation has this path, so a miss means 405 rather than 404.
    """
    path_exists = False
    for pattern, op in _ROUTES:
        m = pattern.match(path)
        if m is None:
            continue
        path_exists = True
        if op.method == method:
            return op, m.groupdict(), True
    return None, {}, path_exists
