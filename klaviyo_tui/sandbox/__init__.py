"""A Klaviyo-compatible sandbox: a real HTTP server on loopback with in-memory state.

It is the only Klaviyo that tests, the demo and benchmarks talk to, and it lets a user rehearse
an export without touching a real account. It follows docs/klaviyo-api.md §10 and the spec's
response schemas. Where the real API's behaviour is unknown it is deliberately stricter (see
README.md next to this file for the full list), for example:

- Unknown key -> 401; missing scope -> 403, checked before the body is read or validated, so an
  empty-body POST probes a write scope (403 = missing, 400 = granted).
- `revision` is required and must be a known revision date (optionally `.pre`), else 400.
- Bodies must be application/vnd.api+json or application/json (else 415), uncompressed (a
  Content-Encoding other than identity is 415) and at most 5 MB (else 413).
- Bulk import: all-or-nothing validation (ASCII email syntax, E.164 phone syntax, known
  attribute keys only, no `meta`, one identifier required, <= 10,000 profiles, <= 100 KB each,
  at most one list which must exist); any bad row -> 400 with one error per bad row.
- A list deleted while a job is pending makes each of the job's rows fail (import errors).
- Unknown query parameters are 400. Sparse fieldsets (`fields[...]`) are accepted and ignored.
- The create_list daily cap (150/day) is an account quota: it stays on with rate limits off.

Faults (seeded) apply to every request under /api/ before anything else (before auth, before
the request takes effect): a faulted request changes no state and uses no rate budget.
`rowfail` instead fails single profiles inside a bulk job.
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
