"""Sandbox settings: keys and scopes, known revisions, fault specs, SMS regions.

Kept apart from the server so the CLI can parse and validate options without starting anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Every scope the sandbox knows (the ones its operations need, from the spec's x-klaviyo-scopes).
ALL_SCOPES: frozenset[str] = frozenset(
    {
        "accounts:read",
        "lists:read",
        "lists:write",
        "profiles:read",
        "profiles:write",
        "subscriptions:write",
    }
)

#: The documented demo key (not a secret: it only opens the in-memory sandbox).
#: Format: `pk_` + 34 alphanumerics, like a real private key.
DEMO_KEY = "pk_sandboxDEMOkey00000000000000000000"

KEY_PATTERN = re.compile(r"^pk_[A-Za-z0-9]{34}$")

#: Revisions the spec repo has branches for (klaviyo-api.md §1.2); each also accepted with `.pre`.
KNOWN_REVISIONS: frozenset[str] = frozenset(
    {
        "2022-10-17",
        "2023-01-24",
        "2023-02-22",
        "2023-06-15",
        "2023-07-15",
        "2023-08-15",
        "2023-09-15",
        "2023-10-15",
        "2023-12-15",
        "2024-02-15",
        "2024-05-15",
        "2024-06-15",
        "2024-07-15",
        "2024-10-15",
        "2025-01-15",
        "2025-04-15",
        "2025-07-15",
        "2025-10-15",
        "2026-01-15",
        "2026-04-15",
        "2026-07-15",
    }
)

#: Fault kinds drawn once per request, in the order the draw checks them.
REQUEST_FAULTS: tuple[str, ...] = (
    "429",
    "retry0",
    "500",
    "502",
    "503",
    "524",
    "reset",
    "hang",
    "cf403",
)
#: Drawn once per bulk import job when it is accepted.
JOB_FAULTS: tuple[str, ...] = ("stuck", "badstatus")
#: rowfail: per profile; quota: the share of every rate window another integration uses.
FAULT_KINDS: tuple[str, ...] = (*REQUEST_FAULTS, *JOB_FAULTS, "quota", "rowfail")


def is_known_revision(value: str) -> bool:
    """True for a listed revision date, with or without the `.pre` beta suffix."""
    base = value[:-4] if value.endswith(".pre") else value
    return base in KNOWN_REVISIONS


@dataclass(frozen=True)
class SandboxSettings:
    """How one sandbox behaves. `keys` maps each accepted private key to its scopes."""

    keys: dict[str, frozenset[str]] | None = None
    rate_limits: bool = True
    faults: dict[str, float] = field(default_factory=dict)
    job_delay: float = 0.5
    seed: int = 0
    account_name: str = "Sandbox Store"
    #: ISO region codes whose phone numbers the account may text (None: every region).
    sms_regions: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for kind, prob in self.faults.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"fault probability for {kind} must be between 0 and 1")
        if sum(p for k, p in self.faults.items() if k in REQUEST_FAULTS) > 1.0:
            raise ValueError("request fault probabilities add up to more than 1")
        if sum(p for k, p in self.faults.items() if k in JOB_FAULTS) > 1.0:
            raise ValueError("job fault probabilities (stuck, badstatus) add up to more than 1")
        if self.job_delay < 0:
            raise ValueError("job delay must not be negative")
        if self.sms_regions is not None:
            check_regions(self.sms_regions)

    @property
    def effective_keys(self) -> dict[str, frozenset[str]]:
        """The configured keys, or the demo key with every scope."""
        return dict(self.keys) if self.keys else {DEMO_KEY: ALL_SCOPES}


def parse_faults(spec: str) -> dict[str, float]:
    """Parse `429=0.1,reset=0.02,rowfail=0.01`; raise ValueError with a clear message."""
    result: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, sep, value = part.partition("=")
        kind = kind.strip()
        if not sep:
            raise ValueError(f"fault {part!r} needs a probability, like {kind}=0.05")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        try:
            prob = float(value)
        except ValueError:
            raise ValueError(f"fault probability {value!r} for {kind} is not a number") from None
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"fault probability for {kind} must be between 0 and 1")
        result[kind] = prob
    return result


def parse_key(spec: str) -> tuple[str, frozenset[str]]:
    """Parse `KEY` or `KEY:scope,scope` (no scopes given means every scope)."""
    key, sep, scopes_text = spec.partition(":")
    if not KEY_PATTERN.match(key):
        raise ValueError("a sandbox key must be 'pk_' followed by 34 letters or digits")
    if not sep:
        return key, ALL_SCOPES
    scopes = frozenset(s.strip() for s in scopes_text.split(",") if s.strip())
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise ValueError(
            f"unknown scope(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(ALL_SCOPES))}"
        )
    return key, scopes


def check_regions(regions: frozenset[str]) -> None:
    """Raise ValueError naming any code phonenumbers does not know as a region."""
    import phonenumbers  # only when regions are configured

    unknown = sorted(r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ValueError(
            f"unknown SMS region(s) {', '.join(unknown)}; use ISO 3166 codes such as US,CA,GB"
        )


def parse_regions(spec: str) -> frozenset[str] | None:
    """Parse `US,CA` (case-insensitive); an empty spec means every region."""
    regions = frozenset(r.strip().upper() for r in spec.split(",") if r.strip())
    if not regions:
        return None
    check_regions(regions)
    return regions
