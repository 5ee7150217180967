"""Every request body the client sends validates against the spec's requestBody schema.

Bodies are captured with a recording transport and checked with jsonschema against
`../shared/klaviyo-openapi/stable.json` (OpenAPI 3.0: `nullable` is turned into a JSON Schema type
union first). The only bodies left out are verify_key's deliberate `{}` scope probes, which exist to
be refused (see KlaviyoClient.verify_key).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.input.batching import BatchPacker
from klaviyo_tui.klaviyo import KlaviyoClient, RequestRejected, SubscriptionProfile

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "klaviyo-openapi" / "stable.json"
KEY = "pk_abcdefghijklmnopqrstuvwxyz0123456789"
#: (method, path sent) -> the spec's path template for it
MEMBERS = "/api/lists/{id}/relationships/profiles"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
OPERATIONS = {
    ("POST", "/api/lists"): "/api/lists",
    ("POST", "/api/profile-bulk-import-jobs"): "/api/profile-bulk-import-jobs",
    ("DELETE", MEMBERS.replace("{id}", "Y6nRLr")): MEMBERS,
    ("POST", SUBSCRIBE): SUBSCRIBE,
}


@cache
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"the Klaviyo OpenAPI spec is not at {SPEC} (it sits beside the repo)")
    document: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return document


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` → JSON Schema `type: [t, "null"]` / `anyOf` with null."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def request_schema(method: str, path: str) -> dict[str, Any]:
    doc = spec()
    op = doc["paths"][path][method.lower()]
    content = op["requestBody"]["content"]
    schema = (content.get("application/vnd.api+json") or content["application/json"])["schema"]
    return {"components": _nullable(doc["components"]), **_nullable(schema)}


class Recording(httpx.AsyncBaseTransport):
    """Wraps a transport and keeps every request with its body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.seen.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)


def fake_klaviyo(request: httpx.Request) -> httpx.Response:
    """Just enough Klaviyo to let each operation complete."""
    ctype = {"content-type": "application/vnd.api+json"}
    if request.method == "POST" and request.content == b"{}":
        return httpx.Response(400, json={"errors": [{"detail": "probe"}]}, headers=ctype)
    if request.method == "DELETE":
        return httpx.Response(204)
    if request.url.path == "/api/profile-subscription-bulk-create-jobs":
        return httpx.Response(202)
    if request.method == "POST" and request.url.path == "/api/lists":
        name = orjson.loads(request.content)["data"]["attributes"]["name"]
        data = {"type": "list", "id": "Y6nRLr", "attributes": {"name": name}}
        return httpx.Response(201, json={"data": data}, headers=ctype)
    if request.method == "POST":
        job = {"type": "profile-bulk-import-job", "id": "01J3Y8ZQ6W2XH1M4T7V5B0C9DA"}
        job["attributes"] = {"status": "queued", "total_count": 2}  # type: ignore[assignment]
        return httpx.Response(202, json={"data": job}, headers=ctype)
    return httpx.Response(200, json={"data": []}, headers=ctype)


def profile(i: int, **more: Any) -> bytes:
    return orjson.dumps({"type": "profile", "attributes": {"email": f"p{i}@example.com", **more}})


async def test_every_request_body_matches_the_spec() -> None:
    recording = Recording(httpx.MockTransport(fake_klaviyo))
    packer = BatchPacker("Y6nRLr")
    packer.add(profile(1), 1, "p1@example.com")
    packer.add(
        profile(
            2,
            phone_number="+14155550123",
            first_name="Ada",
            location={"city": "Boston", "latitude": 42.36},
            properties={"ltv": 1234.5, "tags": ["a", "b"], "vip": None},
        ),
        2,
        "p2@example.com",
    )
    batch = packer.flush()
    assert batch is not None
    async with KlaviyoClient("https://a.klaviyo.com", KEY, transport=recording) as k:
        await k.verify_key()
        await k.create_list("VIP export")
        await k.find_or_create_list('Name with "quotes"')
        await k.submit_import(batch.body)
        await k.submit_import(batch.without({0}).body)
        with pytest.raises(RequestRejected):
            await k.submit_import(b"{}")  # refused by the fake; left out below like the probes
        await k.remove_from_list("Y6nRLr", ["01GDDKASAP8TKDDA2GRZDSVP4H"])
        await k.subscribe_profiles(
            "Y6nRLr",
            [
                SubscriptionProfile(email="a@example.com"),
                SubscriptionProfile(
                    phone_number="+15005550006", email_marketing=False, sms_marketing=True
                ),
                SubscriptionProfile(
                    email="b@example.com", phone_number="+15005550006", sms_marketing=True
                ),
            ],
            historical=False,
        )
        past = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        await k.subscribe_profiles(
            "Y6nRLr",
            [SubscriptionProfile(email="c@example.com", consented_at=past)],
            historical=True,
        )
    checked = 0
    for method, path, body in recording.seen:
        if not body or body == b"{}":
            continue
        assert (method, path) in OPERATIONS, (method, path)
        jsonschema.validate(orjson.loads(body), request_schema(method, OPERATIONS[method, path]))
        checked += 1
    assert checked == 7


def test_the_validator_does_reject_a_wrong_body() -> None:
    """Guard against a schema conversion that accepts anything."""
    schema = request_schema("POST", "/api/profile-bulk-import-jobs")
    bad = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [{}]}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"data": {"type": "lists", "attributes": {"name": "x"}}},
            request_schema("POST", "/api/lists"),
        )
    subscribe = request_schema("POST", "/api/profile-subscription-bulk-create-jobs")
    no_consent = {"type": "profile", "attributes": {"email": "a@example.com"}}
    with pytest.raises(jsonschema.ValidationError):  # `subscriptions` is required
        jsonschema.validate(
            {
                "data": {
                    "type": "profile-subscription-bulk-create-job",
                    "attributes": {"profiles": {"data": [no_consent]}},
                }
            },
            subscribe,
        )
