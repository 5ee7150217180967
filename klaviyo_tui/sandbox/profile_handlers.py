"""Profile reads: list members (full or ids only), profiles by identifier, one profile.

Sparse fieldsets (`fields[profile]`) are honoured; `additional-fields[profile]=subscriptions`
adds the spec's subscriptions object. Stricter choices: at most 100 values in an `any(...)`
filter (what tools use; the limit is undocumented), `predictive_analytics` is refused (the
sandbox has none), and unknown query parameters are 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from . import resources
from .ctx import Ctx, allow_params, get_list_rec, ok
from .error_responses import invalid, not_found
from .query import Condition, decode_cursor, page_links, page_size, parse_filter
from .store import ListRec

MAX_ANY = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ATTRS = frozenset(
    {
        "created",
        "email",
        "external_id",
        "first_name",
        "id",
        "image",
        "last_event_date",
        "last_name",
        "locale",
        "location",
        "organization",
        "phone_number",
        "properties",
        "subscriptions",
        "title",
        "updated",
    }
)
_LOCATION = frozenset(
    {"address1", "address2", "city", "country", "ip", "latitude", "longitude", "region"}
    | {"timezone", "zip"}
)
_MEMBER_FILTERS = {
    "email": {"equals", "any"},
    "phone_number": {"equals", "any"},
    "joined_group_at": {"greater-or-equal", "greater-than", "less-or-equal", "less-than"},
}
_PROFILE_FILTERS = {
    "id": {"equals", "any"},
    "email": {"equals", "any"},
    "phone_number": {"equals", "any"},
    "external_id": {"equals", "any"},
}
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "greater-or-equal": lambda a, b: a >= b,
    "greater-than": lambda a, b: a > b,
    "less-or-equal": lambda a, b: a <= b,
    "less-than": lambda a, b: a < b,
}
_MEMBER_PARAMS = ("filter", "sort", "page[size]", "page[cursor]")
_PROFILE_PARAMS = ("fields[profile]", "additional-fields[profile]")


def _fields(ctx: Ctx, member: bool) -> frozenset[str] | None:
    raw = ctx.query.get("fields[profile]")
    if raw is None:
        return None
    fields = frozenset(f.strip() for f in raw.split(",") if f.strip())
    for f in fields:
        top, _, rest = f.partition(".")
        known = (
            (top in _ATTRS and not rest)
            or (top == "joined_group_at" and member and not rest)
            or (top == "location" and rest in _LOCATION)
            or (top == "subscriptions" and rest)
        )
        if not known:
            raise invalid(
                f"'{f}' is not a valid field for the resource 'profile'.",
                parameter="fields[profile]",
            )
    return fields


def _with_subscriptions(ctx: Ctx) -> bool:
    raw = ctx.query.get("additional-fields[profile]")
    if raw is None:
        return False
    wanted = {v.strip() for v in raw.split(",") if v.strip()}
    if wanted - {"subscriptions"}:
        raise invalid(
            f"'{raw}' is not supported by the sandbox (only 'subscriptions').",
            parameter="additional-fields[profile]",
        )
    return True


def _check_any(conds: list[Condition]) -> None:
    for op, fld, value in conds:
        if op == "any" and len(value) > MAX_ANY:
            raise invalid(
                f"any({fld},…) takes at most {MAX_ANY} values; got {len(value)}.",
                parameter="filter",
            )


def _identifier_hits(ctx: Ctx, fld: str, values: list[Any]) -> set[int]:
    store = ctx.store
    if fld == "id":
        return {p for v in values if isinstance(v, str) and (p := store.position(v)) is not None}
    index = {"email": store.by_email, "phone_number": store.by_phone}.get(fld, store.by_external)
    keys = [v.lower() if fld == "email" and isinstance(v, str) else v for v in values]
    return {p for k in keys if isinstance(k, str) and (p := index.get(k)) is not None}


def _joined_where(
    slots: Iterator[int], rec: ListRec, cmp: Callable[[int, int], bool], bound: int
) -> Iterator[int]:
    joined = rec.joined
    return (s for s in slots if cmp(joined[s], bound))


def _slots_in(slots: Iterator[int], wanted: set[int]) -> Iterator[int]:
    return (s for s in slots if s in wanted)


def _member_slots(ctx: Ctx, rec: ListRec) -> tuple[list[int], int | None]:
    """The page of member slots a list query selects, and the next cursor position."""
    conds = parse_filter(ctx.query.get("filter"), _MEMBER_FILTERS)
    _check_any(conds)
    size = page_size(ctx.query, 20, 100)
    sort = ctx.query.get("sort", "joined_group_at")
    if sort not in ("joined_group_at", "-joined_group_at"):
        raise invalid(f"'{sort}' is not a valid sort here.", parameter="sort")
    descending = sort.startswith("-")
    start = (
        decode_cursor(ctx.query)
        if "page[cursor]" in ctx.query
        else (len(rec.order) if descending else 0)
    )
    slots: Iterator[int] = rec.slots(start, descending)
    for op, fld, value in conds:
        if fld == "joined_group_at":
            if not isinstance(value, datetime):
                raise invalid(
                    "joined_group_at needs an unquoted ISO-8601 datetime.", parameter="filter"
                )
            bound = (value - _EPOCH) // timedelta(microseconds=1)
            slots = _joined_where(slots, rec, _COMPARE[op], bound)
            continue
        hits = _identifier_hits(ctx, fld, value if op == "any" else [value])
        slots = _slots_in(slots, {rec.members[p] for p in hits if p in rec.members})
    chunk: list[int] = []
    nxt: int | None = None
    for slot in slots:
        if len(chunk) == size:
            nxt = chunk[-1] if descending else chunk[-1] + 1
            break
        chunk.append(slot)
    return chunk, nxt


async def get_profiles_for_list(ctx: Ctx) -> Response:
    allow_params(ctx, (*_MEMBER_PARAMS, *_PROFILE_PARAMS))
    fields, subs = _fields(ctx, member=True), _with_subscriptions(ctx)
    rec = get_list_rec(ctx)
    chunk, nxt = _member_slots(ctx, rec)
    data = [
        resources.profile(ctx.store, rec.order[s], ctx.base, fields, subs, rec.joined[s])
        for s in chunk
    ]
    return ok(ctx, {"data": data, "links": page_links(ctx.base, ctx.path, ctx.query, nxt)})


async def get_profile_ids_for_list(ctx: Ctx) -> Response:
    allow_params(ctx, _MEMBER_PARAMS)
    rec = get_list_rec(ctx)
    chunk, nxt = _member_slots(ctx, rec)
    store = ctx.store
    data = [{"type": "profile", "id": store.profile_id(rec.order[s])} for s in chunk]
    return ok(ctx, {"data": data, "links": page_links(ctx.base, ctx.path, ctx.query, nxt)})


async def get_profiles(ctx: Ctx) -> Response:
    """Every profile in creation order (ids sort the same way), optionally by identifier."""
    allow_params(ctx, ("filter", "sort", "page[size]", "page[cursor]", *_PROFILE_PARAMS))
    fields, subs = _fields(ctx, member=False), _with_subscriptions(ctx)
    conds = parse_filter(ctx.query.get("filter"), _PROFILE_FILTERS)
    _check_any(conds)
    size = page_size(ctx.query, 20, 100)
    sort = ctx.query.get("sort", "id")
    if sort not in ("id", "-id", "created", "-created"):
        raise invalid(f"'{sort}' is not a sort the sandbox serves here.", parameter="sort")
    total = len(ctx.store.blobs)
    positions: list[int] | range = range(total)
    for op, fld, value in conds:
        hits = _identifier_hits(ctx, fld, value if op == "any" else [value])
        positions = sorted(p for p in hits if p in positions)
    if sort.startswith("-"):
        positions = positions[::-1]
    start = decode_cursor(ctx.query)
    chunk = positions[start : start + size]
    nxt = start + size if start + size < len(positions) else None
    data = [resources.profile(ctx.store, p, ctx.base, fields, subs) for p in chunk]
    return ok(ctx, {"data": data, "links": page_links(ctx.base, ctx.path, ctx.query, nxt)})


async def get_profile(ctx: Ctx) -> Response:
    allow_params(ctx, _PROFILE_PARAMS)
    fields, subs = _fields(ctx, member=False), _with_subscriptions(ctx)
    pos = ctx.store.position(ctx.path_params["id"])
    if pos is None:
        raise not_found(f"A profile with id {ctx.path_params['id']} does not exist.")
    body = {
        "data": resources.profile(ctx.store, pos, ctx.base, fields, subs),
        "links": {"self": f"{ctx.base}/api/profiles/{ctx.store.profile_id(pos)}/"},
    }
    return ok(ctx, body)
