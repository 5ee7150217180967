"""A Klaviyo-compatible sandbox: a real HTTP server on loopback with in-memory state.

It is the only Klaviyo that tests, the demo and benchmarks talk to, and it lets a user rehearse
an export without touching a real account. It follows docs/klaviyo-api.md §10 and the spec's
response schemas. Where the real API's behaviour is unknown it is deliberately stricter (see
README.md next to this file for the full list), for example:

- Unknown key -> 401; missing scope -> 403, checked before the body is read or validated, so an
  empty-body POST probes a write scope (403 = missing, 400 = granted).
- `revision` is required and resolved like the live API (400 malformed, 404 future or before the
  endpoint existed, 410 retired; other past dates fall back to the nearest earlier release).
- Bodies must be application/vnd.api+json or application/json (else 415), uncompressed (a
  Content-Encoding other than identity is 415) and at most 5 MB (else 413).
- Bulk import: all-or-nothing validation (ASCII email syntax, known attribute keys only, no
  `meta`, one identifier required, <= 10,000 profiles, <= 100 KB each, at most one list which
  must exist); any bad row -> 400 with one error per bad row. Invalid phones are silently
  dropped (live); valid phones outside `sms_regions` are a 400 (live).
- No silent merges: a row whose phone_number or external_id belongs to a different profile
  fails inside the job with an import error.
- A list deleted while a job is pending makes each of the job's rows fail (import errors).
- Unknown query parameters are 400. `fields[profile]` sparse fieldsets are honoured; at most
  100 values in an `any(...)` filter.
- The create_list daily cap (150/day) is an account quota: it stays on with rate limits off.

Faults (seeded) apply to every request under /api/ before anything else (before auth, before
the request takes effect): a faulted request changes no state and uses no rate budget, except
`524`, which answers after the request took effect. `rowfail` fails single profiles inside a bulk
job; `stuck` and `badstatus` whole jobs; `quota` shrinks every rate window.
"""

from typing import TYPE_CHECKING, Any

from .settings import ALL_SCOPES, DEMO_KEY, SandboxSettings, parse_faults, parse_key

if TYPE_CHECKING:
    from .server import SandboxServer, serve


def __getattr__(name: str) -> Any:
    """The server (starlette, uvicorn) loads on first use: `klaviyo-tui run` never needs it."""
    if name in ("SandboxServer", "serve"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)


__all__ = [
    "ALL_SCOPES",
    "DEMO_KEY",
    "SandboxServer",
    "SandboxSettings",
    "parse_faults",
    "parse_key",
    "serve",
]
