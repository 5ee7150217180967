"""JSON:API resource objects, shaped after the spec's response schemas."""

from __future__ import annotations

from typing import Any

from .store import Job, ListRec, Store, iso, iso_micros

_PROFILE_FIELDS = (
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
)
JOB_EXPIRY = 7 * 86400.0  # sandbox choice; Klaviyo does not document how long results live


def account(store: Store, base: str) -> dict[str, Any]:
    name = store.account_name
    return {
        "type": "account",
        "id": store.account_id,
        "attributes": {
            "test_account": True,
            "contact_information": {
                "default_sender_name": name,
                "default_sender_email": "sender@sandbox.invalid",
                "website_url": None,
                "organization_name": name,
                "street_address": {
                    "address1": None,
                    "address2": None,
                    "city": None,
                    "region": None,
                    "country": None,
                    "zip": None,
                },
            },
            "industry": None,
            "timezone": "UTC",
            "preferred_currency": "USD",
            "public_api_key": store.account_id,
            "locale": "en-US",
        },
        "links": {"self": f"{base}/api/accounts/{store.account_id}/"},
    }


def list_resource(rec: ListRec, base: str, profile_count: bool = False) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "name": rec.name,
        "created": iso(rec.created),
        "updated": iso(rec.updated),
        "opt_in_process": rec.opt_in_process,
    }
    if profile_count:
        attrs["profile_count"] = len(rec.members)
    url = f"{base}/api/lists/{rec.id}"
    return {
        "type": "list",
        "id": rec.id,
        "attributes": attrs,
        "relationships": {
            "profiles": {
                "links": {"self": f"{url}/relationships/profiles/", "related": f"{url}/profiles/"}
            },
            "tags": {"links": {"self": f"{url}/relationships/tags/", "related": f"{url}/tags/"}},
        },
        "links": {"self": f"{url}/"},
    }


def default_subscriptions() -> dict[str, Any]:
    """A profile's consent before any subscription job touched it."""
    never: dict[str, Any] = {
        "consent": "NEVER_SUBSCRIBED",
        "consent_timestamp": None,
        "last_updated": None,
        "method": None,
        "method_detail": "",
    }
    return {
        "email": {
            "marketing": {
                "can_receive_email_marketing": False,
                **never,
                "custom_method_detail": None,
                "double_optin": None,
                "suppression": [],
                "list_suppressions": [],
            }
        },
        "sms": {
            "marketing": {"can_receive_sms_marketing": False, **never},
            "transactional": {"can_receive_sms_transactional": False, **never},
        },
    }


def subscriptions_of(data: dict[str, Any]) -> dict[str, Any]:
    """The spec's `subscriptions` object for a stored profile (defaults filled in)."""
    out = default_subscriptions()
    stored = data.get("subscriptions") or {}
    for channel, kinds in stored.items():
        for kind, state in kinds.items():
            out[channel][kind].update(state)
    return out


def profile(
    store: Store,
    pos: int,
    base: str,
    fields: frozenset[str] | None = None,
    subscriptions: bool = False,
    joined_us: int | None = None,
) -> dict[str, Any]:
    """A profile resource; `fields` is a parsed sparse fieldset (None: every attribute)."""
    data = store.profile(pos)
    attrs: dict[str, Any] = {key: data.get(key) for key in _PROFILE_FIELDS}
    attrs["created"] = data.get("created")
    attrs["updated"] = data.get("updated")
    attrs["last_event_date"] = None
    attrs["location"] = data.get("location")
    attrs["properties"] = data.get("properties", {})
    if subscriptions:
        attrs["subscriptions"] = subscriptions_of(data)
    if joined_us is not None:
        attrs["joined_group_at"] = iso_micros(joined_us)
    if fields is not None:
        attrs = sparse(attrs, fields)
    pid = store.profile_id(pos)
    return {
        "type": "profile",
        "id": pid,
        "attributes": attrs,
        "links": {"self": f"{base}/api/profiles/{pid}/"},
    }


def sparse(attrs: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """Keep the requested attributes. `location.city` keeps that key of location; dotted
    `subscriptions.…` paths keep the whole subscriptions object (sandbox simplification);
    `joined_group_at` stays because the spec's list member schema requires it."""
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if name in fields or name == "joined_group_at":
            out[name] = value
        elif name == "location" and value is not None:
            keys = {f.split(".", 1)[1] for f in fields if f.startswith("location.")}
            if keys:
                out[name] = {k: v for k, v in value.items() if k in keys}
        elif name == "subscriptions" and any(f.startswith("subscriptions.") for f in fields):
            out[name] = value
    return out


def member(store: Store, rec: ListRec, slot: int, base: str) -> dict[str, Any]:
    return profile(store, rec.order[slot], base, joined_us=rec.joined[slot])


def job(j: Job, now: float, base: str) -> dict[str, Any]:
    status = j.status(now)
    completed, failed = j.completed_count, j.failed_count
    if status == "processing" and not j.done:
        span = max(j.done_at - j.start_at, 1e-9)
        completed = min(int(j.total * (now - j.start_at) / span), j.total - 1)
    done = status == "complete"
    url = f"{base}/api/profile-bulk-import-jobs/{j.id}"
    return {
        "type": "profile-bulk-import-job",
        "id": j.id,
        "attributes": {
            "status": status,
            "created_at": iso(j.created),
            "total_count": j.total,
            "completed_count": completed,
            "failed_count": failed,
            "completed_at": iso(j.done_at) if done else None,
            "expires_at": iso(j.done_at + JOB_EXPIRY) if done else None,
            "started_at": iso(j.start_at) if status != "queued" else None,
        },
        "relationships": {
            "lists": {
                "data": [{"type": "list", "id": list_id} for list_id in j.list_ids],
                "links": {"self": f"{url}/relationships/lists/", "related": f"{url}/lists/"},
            },
            "profiles": {
                "links": {"self": f"{url}/relationships/profiles/", "related": f"{url}/profiles/"}
            },
            "import-errors": {"links": {"related": f"{url}/import-errors/"}},
        },
        "links": {"self": f"{url}/"},
    }
