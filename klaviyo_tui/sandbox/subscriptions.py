"""Bulk subscribe / unsubscribe jobs (`profile-subscription-bulk-create|delete-jobs`).

Live behaviour (klaviyo-live-behaviour.md): at most 1,000 profiles; the list is
`relationships.list` (singular); attributes only email, phone_number, subscriptions and
age_gated_date_of_birth; `historical_import: true` needs a past `consented_at` and skips double
opt-in, while `consented_at` without it is an error; 202 with no body and nothing to poll; the
effect (profile, consent, membership) lands after a delay (`job_delay`). Double opt-in lists
leave the profile pending confirmation (no consent change, no membership; the sandbox never
confirms). A backdated consent older than a newer unsubscribe -> 400 at
`…/subscriptions/email/marketing/consented_at`; an unknown list -> 400 at
`/data/relationships/list/data/id`. Subscribing removes UNSUBSCRIBE, SPAM_COMPLAINT and
USER_SUPPRESSED suppressions. Validation is all-or-nothing, one error per bad row, like bulk
import. Stricter, unverified: a phone_number or email owned by a different profile is a 400 (no
silent merges); a resource `id`, whatsapp, push and open_tracking are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.responses import Response

from .bulk import EMAIL_RE, OUT_OF_REGION
from .ctx import Ctx, allow_params, json_body
from .error_responses import ApiError, error_object, invalid
from .phones import E164_RE, classify
from .store import Conflict, Store, iso

MAX_PROFILES = 1000
_ROWS = "/data/attributes/profiles/data"
_ATTRS = frozenset({"email", "phone_number", "subscriptions", "age_gated_date_of_birth"})
_KINDS = {"email": ("marketing",), "sms": ("marketing", "transactional")}
_LIFTED = frozenset({"UNSUBSCRIBE", "SPAM_COMPLAINT", "USER_SUPPRESSED"})


@dataclass
class Row:
    email: str | None
    phone: str | None
    channels: dict[str, dict[str, float | None]]  # channel -> kind -> consented_at (epoch)


@dataclass
class Request:
    rows: list[Row]
    list_id: str | None
    historical: bool
    source: str | None


class _Bad(Exception):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field, self.detail = field, detail


def _parse_time(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise _Bad(field, "consented_at must be an ISO-8601 datetime string.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(field, f"'{value}' is not a valid ISO-8601 datetime.") from None
    if parsed.tzinfo is None:
        raise _Bad(field, "consented_at needs a time zone offset (e.g. +00:00).")
    return parsed.timestamp()


def _channels(subs: Any, consent: str, historical: bool, now: float) -> dict[str, Any]:
    if not isinstance(subs, dict):
        raise _Bad("subscriptions", "subscriptions must be an object.")
    out: dict[str, dict[str, float | None]] = {}
    for channel, params in subs.items():
        if params is None:
            continue
        if channel not in _KINDS:
            raise _Bad(f"subscriptions/{channel}", f"The sandbox does not serve '{channel}'.")
        if not isinstance(params, dict):
            raise _Bad(f"subscriptions/{channel}", f"subscriptions.{channel} must be an object.")
        for kind, value in params.items():
            where = f"subscriptions/{channel}/{kind}"
            if value is None:
                continue
            if kind not in _KINDS[channel]:
                raise _Bad(where, f"The sandbox does not serve {channel}.{kind}.")
            if not isinstance(value, dict) or value.get("consent") != consent:
                raise _Bad(f"{where}/consent", f"consent must be '{consent}'.")
            extra = set(value) - {"consent", "consented_at"}
            if extra or (consent == "UNSUBSCRIBED" and "consented_at" in value):
                bad = sorted(extra or {"consented_at"})[0]
                raise _Bad(f"{where}/{bad}", f"'{bad}' is not a valid field here.")
            at = value.get("consented_at")
            if at is None:
                if historical:
                    raise _Bad(
                        f"{where}/consented_at",
                        "historical_import requires consented_at on every subscription.",
                    )
                out.setdefault(channel, {})[kind] = None
                continue
            if not historical:
                raise _Bad(
                    f"{where}/consented_at",
                    "consented_at may only be sent with historical_import: true.",
                )
            when = _parse_time(at, f"{where}/consented_at")
            if when > now:
                raise _Bad(f"{where}/consented_at", "consented_at must be in the past.")
            out.setdefault(channel, {})[kind] = when
    if not out:
        raise _Bad("subscriptions", "At least one subscription is required.")
    return out


def _row(store: Store, item: Any, consent: str, historical: bool, ctx: Ctx) -> Row:  # raises _Bad
    if not isinstance(item, dict) or item.get("type") != "profile":
        raise _Bad("", "Each profile must be an object with type 'profile'.")
    if item.get("id") is not None:
        raise _Bad("id", "The sandbox identifies subscribers by email or phone_number only.")
    attrs = item.get("attributes")
    if not isinstance(attrs, dict):
        raise _Bad("", "Each profile needs an attributes object.")
    allowed = _ATTRS if consent == "SUBSCRIBED" else _ATTRS - {"age_gated_date_of_birth"}
    for key in attrs:
        if key not in allowed:
            raise _Bad(key, f"'{key}' is not a valid field for the resource 'profile'.")
    email, phone = attrs.get("email"), attrs.get("phone_number")
    if email is not None and (not isinstance(email, str) or not EMAIL_RE.match(email)):
        raise _Bad("email", f"{email} is not a valid email address.")
    if phone is not None:
        valid, region = (
            classify(phone)
            if isinstance(phone, str) and E164_RE.match(phone)
            else (
                False,
                None,
            )
        )
        if not valid:
            raise _Bad("phone_number", f"{phone} is not a valid phone number.")
        regions = ctx.settings.sms_regions
        if regions is not None and region not in regions:
            raise _Bad("phone_number", OUT_OF_REGION)
    dob = attrs.get("age_gated_date_of_birth")
    if dob is not None and not (isinstance(dob, str) and _is_date(dob)):
        raise _Bad("age_gated_date_of_birth", "age_gated_date_of_birth must be YYYY-MM-DD.")
    if email is None and phone is None:
        raise _Bad("", "A profile needs an email or a phone_number.")
    channels = _channels(attrs.get("subscriptions"), consent, historical, ctx.now)
    if "email" in channels and email is None:
        raise _Bad("subscriptions/email", "An email subscription needs the profile's email.")
    if "sms" in channels and phone is None:
        raise _Bad("subscriptions/sms", "An SMS subscription needs the profile's phone_number.")
    found = store.resolve({"email": email, "phone_number": phone}, None)
    if isinstance(found, Conflict):
        raise _Bad(found.field or "", found.detail)
    if found is not None and consent == "SUBSCRIBED":
        _check_backdating(store.profile(found), channels)
    return Row(email, phone, channels)


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _check_backdating(data: dict[str, Any], channels: dict[str, Any]) -> None:
    stored = data.get("subscriptions") or {}
    for channel, kinds in channels.items():
        for kind, at in kinds.items():
            state = stored.get(channel, {}).get(kind, {})
            since = state.get("last_updated")
            unsubscribed = state.get("consent") == "UNSUBSCRIBED" and since
            if at is not None and unsubscribed and at < datetime.fromisoformat(since).timestamp():
                raise _Bad(
                    f"subscriptions/{channel}/{kind}/consented_at",
                    f"consented_at is older than the profile's unsubscribe at {since}.",
                )


def parse(ctx: Ctx, job_type: str, consent: str) -> Request:
    """Validate a subscribe/unsubscribe job body; ApiError(400) names every bad row."""
    doc = json_body(ctx)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON:API document with a data object.")
    if data.get("type") != job_type:
        raise invalid(f"data.type must be '{job_type}'.", pointer="/data/type")
    attrs = data.get("attributes")
    profiles = attrs.get("profiles") if isinstance(attrs, dict) else None
    items = profiles.get("data") if isinstance(profiles, dict) else None
    if not isinstance(items, list) or not items:
        raise invalid("attributes.profiles.data must be a non-empty array.", pointer=_ROWS)
    if len(items) > MAX_PROFILES:
        raise invalid(f"At most {MAX_PROFILES} profiles per job; got {len(items)}.", pointer=_ROWS)
    assert isinstance(attrs, dict)
    historical = attrs.get("historical_import") or False
    if not isinstance(historical, bool) or (consent == "UNSUBSCRIBED" and historical):
        raise invalid("historical_import must be a boolean.", pointer="/data/attributes")
    source = attrs.get("custom_source")
    if source is not None and not isinstance(source, str):
        raise invalid("custom_source must be a string.", pointer="/data/attributes/custom_source")
    list_id = _list_id(ctx, data.get("relationships"))
    rows: list[Row] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        try:
            rows.append(_row(ctx.store, item, consent, historical, ctx))
        except _Bad as bad:
            where = f"/attributes/{bad.field}" if bad.field not in ("", "id") else f"/{bad.field}"
            pointer = f"{_ROWS}/{i}{where}".rstrip("/")
            errors.append(
                error_object(400, "invalid", "Invalid input.", bad.detail, pointer=pointer)
            )
    if errors:
        err = ApiError(400, "invalid", "Invalid input.", errors[0]["detail"])
        err.errors = errors
        raise err
    return Request(rows, list_id, historical, source)


def _list_id(ctx: Ctx, rels: Any) -> str | None:
    if rels is None:
        return None
    rel = rels.get("list") if isinstance(rels, dict) else None
    item = rel.get("data") if isinstance(rel, dict) else None
    if not isinstance(item, dict) or item.get("type") != "list" or type(item.get("id")) is not str:
        raise invalid(
            "relationships.list.data needs type 'list' and a string id.",
            pointer="/data/relationships/list/data",
        )
    if item["id"] not in ctx.store.lists:
        raise invalid(
            f"List ID {item['id']} does not exist.", pointer="/data/relationships/list/data/id"
        )
    return str(item["id"])


def _state(
    consent: str, channel: str, kind: str, at: float, now: float, source: str | None
) -> dict[str, Any]:
    flag = f"can_receive_{channel}_{kind}" if channel == "sms" else "can_receive_email_marketing"
    state = {
        flag: consent == "SUBSCRIBED",
        "consent": consent,
        "consent_timestamp": iso(at),
        "last_updated": iso(now),
        "method": "API",
        "method_detail": source or "",
    }
    if channel == "email":
        state["double_optin"] = False
    return state


def apply(store: Store, req: Request, consent: str, now: float) -> None:
    """The job's effect, once its delay has passed. Rows that meanwhile conflict are skipped."""
    rec = store.lists.get(req.list_id) if req.list_id else None
    pending = rec is not None and rec.opt_in_process == "double_opt_in" and not req.historical
    stamp = iso(now)
    for row in req.rows:
        pos = store.upsert({"email": row.email, "phone_number": row.phone}, None, stamp)
        if isinstance(pos, Conflict):
            continue
        if consent == "SUBSCRIBED" and pending:
            continue  # awaiting a confirmation the sandbox never sends back
        data = store.profile(pos)
        subs = data.setdefault("subscriptions", {})
        for channel, kinds in row.channels.items():
            for kind, at in kinds.items():
                old = subs.get(channel, {}).get(kind, {})
                state = _state(consent, channel, kind, at or now, now, req.source)
                if channel == "email":
                    kept = [s for s in old.get("suppression", []) if s["reason"] not in _LIFTED]
                    if consent == "UNSUBSCRIBED":
                        kept.append({"reason": "UNSUBSCRIBE", "timestamp": stamp})
                    state["suppression"] = kept
                    state["can_receive_email_marketing"] = consent == "SUBSCRIBED" and not kept
                subs.setdefault(channel, {})[kind] = state
        store.save(pos, data)
        if rec is not None and req.list_id in store.lists:
            if consent == "SUBSCRIBED":
                rec.add(pos, now)
            else:  # stricter, unverified: unsubscribing with a list also leaves that list
                rec.members.pop(pos, None)
    if rec is not None:
        rec.updated = now


async def _job(ctx: Ctx, job_type: str, consent: str) -> Response:
    allow_params(ctx, ())
    req = parse(ctx, job_type, consent)
    store = ctx.store
    store.defer(ctx.now + store.job_delay, lambda now: apply(store, req, consent, now))
    return Response(status_code=202, headers=ctx.headers)


async def bulk_subscribe_profiles(ctx: Ctx) -> Response:
    return await _job(ctx, "profile-subscription-bulk-create-job", "SUBSCRIBED")


async def bulk_unsubscribe_profiles(ctx: Ctx) -> Response:
    return await _job(ctx, "profile-subscription-bulk-delete-job", "UNSUBSCRIBED")
