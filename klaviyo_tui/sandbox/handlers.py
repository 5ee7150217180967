"""Endpoint handlers for accounts, lists, memberships and bulk import jobs.

Each gets a Ctx (already authenticated, scoped and rate-limited). Profile reads are in
profile_handlers.py, subscription jobs in subscriptions.py; HANDLERS maps every operation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response

from . import bulk, fastpath, profile_handlers, resources, subscriptions
from .ctx import (
    Ctx,
    Handler,
    allow_params,
    get_list_rec,
    json_body,
    no_content,
    ok,
    page,
)
from .error_responses import ApiError, invalid, not_found
from .operations import Operation
from .query import page_links, page_size, parse_filter

_PROFILE_COUNT_OP = Operation(
    "GET", "/api/lists/{id}", "get_list:profile_count", frozenset(), 1, 15
)


async def get_accounts(ctx: Ctx) -> Response:
    allow_params(ctx, ())
    links = {"self": f"{ctx.base}/api/accounts/"}
    return ok(ctx, {"data": [resources.account(ctx.store, ctx.base)], "links": links})


_LIST_FILTERS = {
    "name": {"equals", "any"},
    "id": {"equals", "any"},
    "created": {"greater-than"},
    "updated": {"greater-than"},
}
_LIST_SORTS = {"created", "id", "name", "updated"}


async def get_lists(ctx: Ctx) -> Response:
    allow_params(ctx, ("filter", "sort", "page[size]", "page[cursor]", "include"))
    if ctx.query.get("include"):
        raise invalid("The sandbox does not serve list includes.", parameter="include")
    conds = parse_filter(ctx.query.get("filter"), _LIST_FILTERS)
    size = page_size(ctx.query, 10, 10)
    items = list(ctx.store.lists.values())
    for op, fld, value in conds:
        if op == "equals":
            items = [r for r in items if getattr(r, fld) == value]
        elif op == "any":
            items = [r for r in items if getattr(r, fld) in value]
        elif isinstance(value, datetime):
            items = [r for r in items if getattr(r, fld) > value.timestamp()]
        else:
            raise invalid(f"{op}({fld},…) needs an unquoted ISO-8601 datetime.", parameter="filter")
    sort = ctx.query.get("sort")
    if sort is not None:
        if sort.lstrip("-") not in _LIST_SORTS:
            raise invalid(f"'{sort}' is not a valid sort for lists.", parameter="sort")
        items.sort(key=lambda r: getattr(r, sort.lstrip("-")), reverse=sort.startswith("-"))
    chunk, nxt = page(items, ctx, size)
    data = [resources.list_resource(r, ctx.base) for r in chunk]
    return ok(ctx, {"data": data, "links": page_links(ctx.base, ctx.path, ctx.query, nxt)})


async def create_list(ctx: Ctx) -> Response:
    allow_params(ctx, ())
    doc = json_body(ctx)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or data.get("type") != "list":
        raise invalid("The body needs data of type 'list'.", pointer="/data")
    attrs = data.get("attributes")
    if not isinstance(attrs, dict):
        attrs = {}
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("A list needs a non-empty name.", pointer="/data/attributes/name")
    opt_in = attrs.get("opt_in_process") or "single_opt_in"
    if opt_in not in ("single_opt_in", "double_opt_in"):
        raise invalid(
            "opt_in_process must be single_opt_in or double_opt_in.",
            pointer="/data/attributes/opt_in_process",
        )
    rec = ctx.store.create_list(name, opt_in, ctx.now)
    url = f"{ctx.base}/api/lists/"
    return ok(ctx, {"data": resources.list_resource(rec, ctx.base), "links": {"self": url}}, 201)


async def get_list(ctx: Ctx) -> Response:
    allow_params(ctx, ("additional-fields[list]", "include"))
    if ctx.query.get("include"):
        raise invalid("The sandbox does not serve list includes.", parameter="include")
    extra = ctx.query.get("additional-fields[list]")
    if extra not in (None, "profile_count"):
        raise invalid(
            f"'{extra}' is not a valid additional field.", parameter="additional-fields[list]"
        )
    if extra:
        ctx.headers = ctx.limiter.check(_PROFILE_COUNT_OP, ctx.now)  # the stricter XS bucket
    rec = get_list_rec(ctx)
    body = {
        "data": resources.list_resource(rec, ctx.base, bool(extra)),
        "links": {"self": f"{ctx.base}/api/lists/{rec.id}/"},
    }
    return ok(ctx, body)


async def delete_list(ctx: Ctx) -> Response:
    allow_params(ctx, ())
    rec = get_list_rec(ctx)
    ctx.store.delete_list(rec.id)
    return no_content(ctx)


def _profile_refs(ctx: Ctx) -> list[int]:
    """Positions of 1..1,000 profile references; any unknown id -> 400 naming each (stricter)."""
    doc = json_body(ctx)
    items = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise invalid("data must be a non-empty array of profile references.", pointer="/data")
    if len(items) > 1000:
        raise invalid("At most 1000 profiles per request.", pointer="/data")
    positions, errors = [], []
    for i, item in enumerate(items):
        pid = item.get("id") if isinstance(item, dict) and item.get("type") == "profile" else None
        pos = ctx.store.position(pid) if isinstance(pid, str) else None
        if pos is None:
            errors.append(invalid(f"Unknown profile reference {pid!r}.", pointer=f"/data/{i}/id"))
        else:
            positions.append(pos)
    if errors:
        first = errors[0]
        first.errors = [e.errors[0] for e in errors]
        raise first
    return positions


async def add_profiles_to_list(ctx: Ctx) -> Response:
    allow_params(ctx, ())
    rec = get_list_rec(ctx)
    for pos in _profile_refs(ctx):
        rec.add(pos, ctx.now)
    rec.updated = ctx.now
    return no_content(ctx)


async def remove_profiles_from_list(ctx: Ctx) -> Response:
    """Membership only: the profile, its consent and other lists are untouched. Known profiles
    that are not members are a no-op, so a retried call (after a lost answer) still gets 204."""
    allow_params(ctx, ())
    rec = get_list_rec(ctx)
    for pos in _profile_refs(ctx):
        rec.members.pop(pos, None)
    rec.updated = ctx.now
    return no_content(ctx)


async def bulk_import_profiles(ctx: Ctx) -> Response:
    allow_params(ctx, ())
    store = ctx.store
    check_sizes = len(ctx.body) > bulk.MAX_PROFILE_BYTES
    regions = ctx.settings.sms_regions
    with fastpath.gc_paused():  # a plain job's parsed body is freed before collection resumes
        doc = json_body(ctx)
        plain = fastpath.plain(doc, check_sizes, regions)
        rows, list_ids, drops = bulk.validate(
            doc, store.lists.__contains__, check_sizes, regions, rows_checked=plain is not None
        )
        fail_rows = ctx.faults.failing_rows(rows)
        job = store.create_job(rows, list_ids, fail_rows, ctx.now, drops, ctx.faults.draw_job())
        if plain is not None:
            job.payload, job.plain = None, plain
        del doc, rows
    body = {
        "data": resources.job(job, ctx.now, ctx.base),
        "links": {"self": f"{ctx.base}/api/profile-bulk-import-jobs/"},
    }
    return ok(ctx, body, 202)


def _get_job(ctx: Ctx, key: str) -> Any:
    job = ctx.store.jobs.get(ctx.path_params[key])
    if job is None:
        raise not_found(f"A bulk import job with id {ctx.path_params[key]} does not exist.")
    return job


async def get_bulk_import_profiles_job(ctx: Ctx) -> Response:
    allow_params(ctx, ("include",))
    include = ctx.query.get("include")
    if include not in (None, "lists"):
        raise invalid(
            f"'{include}' is not an allowed include parameter for this resource.",
            parameter="include",
        )
    job = _get_job(ctx, "job_id")
    body: dict[str, Any] = {
        "data": resources.job(job, ctx.now, ctx.base),
        "links": {"self": f"{ctx.base}/api/profile-bulk-import-jobs/{job.id}/"},
    }
    if include:
        recs = [ctx.store.lists[i] for i in job.list_ids if i in ctx.store.lists]
        body["included"] = [resources.list_resource(r, ctx.base) for r in recs]
    return ok(ctx, body)


async def get_errors_for_bulk_import_profiles_job(ctx: Ctx) -> Response:
    allow_params(ctx, ("page[size]", "page[cursor]"))
    job = _get_job(ctx, "id")
    size = page_size(ctx.query, 20, 100)
    chunk, nxt = page(job.errors, ctx, size)
    return ok(ctx, {"data": chunk, "links": page_links(ctx.base, ctx.path, ctx.query, nxt)})


async def get_bulk_import_profiles_jobs(ctx: Ctx) -> Response:
    allow_params(ctx, ("filter", "sort", "page[size]", "page[cursor]"))
    conds = parse_filter(ctx.query.get("filter"), {"status": {"equals", "any"}})
    size = page_size(ctx.query, 20, 100)
    sort = ctx.query.get("sort", "created_at")
    if sort not in ("created_at", "-created_at"):
        raise invalid(f"'{sort}' is not a valid sort here.", parameter="sort")
    now = ctx.now
    jobs = list(ctx.store.jobs.values())
    for op, _fld, value in conds:
        wanted = set(value) if op == "any" else {value}
        jobs = [j for j in jobs if j.status(now) in wanted]
    if sort.startswith("-"):
        jobs.reverse()
    chunk, nxt = page(jobs, ctx, size)
    data = [resources.job(j, now, ctx.base) for j in chunk]
    return ok(ctx, {"data": data, "links": page_links(ctx.base, ctx.path, ctx.query, nxt)})


HANDLERS: dict[str, Handler] = {
    "get_accounts": get_accounts,
    "get_lists": get_lists,
    "create_list": create_list,
    "get_list": get_list,
    "delete_list": delete_list,
    "get_profiles_for_list": profile_handlers.get_profiles_for_list,
    "get_profile_ids_for_list": profile_handlers.get_profile_ids_for_list,
    "get_profiles": profile_handlers.get_profiles,
    "get_profile": profile_handlers.get_profile,
    "bulk_subscribe_profiles": subscriptions.bulk_subscribe_profiles,
    "bulk_unsubscribe_profiles": subscriptions.bulk_unsubscribe_profiles,
    "add_profiles_to_list": add_profiles_to_list,
    "remove_profiles_from_list": remove_profiles_from_list,
    "bulk_import_profiles": bulk_import_profiles,
    "get_bulk_import_profiles_job": get_bulk_import_profiles_job,
    "get_errors_for_bulk_import_profiles_job": get_errors_for_bulk_import_profiles_job,
    "get_bulk_import_profiles_jobs": get_bulk_import_profiles_jobs,
}
__all__ = ["HANDLERS", "ApiError", "Ctx"]
