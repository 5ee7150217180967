"""How one run confirms and verifies: from the command line, else the export, else defaults.

Light on purpose (no pandas or Arrow): the config loader validates export keys with it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from klaviyo_tui.errors import ExitCode, RunError

if TYPE_CHECKING:
    from klaviyo_tui.store.config import Export

#: A job that shows no progress this long is not waited for: its rows are unconfirmed.
DEFAULT_CONFIRM_TIMEOUT_MINUTES = 30.0
#: The export's `on_invalid_field`: a field Klaviyo refuses costs the field, or the whole row.
DROP_FIELD = "drop_field"
REJECT_ROW = "reject_row"
_SAMPLE = re.compile(r"^sample:(\d+)$")


@dataclass(frozen=True, slots=True)
class VerifyPlan:
    """What to read back after a run: nothing, every member, or a sample of `size` rows."""

    kind: str  # off | full | sample
    size: int = 0

    @property
    def mode(self) -> str:
        return f"sample:{self.size}" if self.kind == "sample" else self.kind


def parse_verify(spec: str | None) -> VerifyPlan:
    """`off`, `full` or `sample:N` (N at least 1); RunError (usage) says what is accepted."""
    text = (spec or "off").strip().lower()
    if text in ("off", "full"):
        return VerifyPlan(text)
    found = _SAMPLE.match(text)
    if found and int(found.group(1)) >= 1:
        return VerifyPlan("sample", int(found.group(1)))
    raise RunError(
        f"verify {spec!r} is not a verification mode",
        hint='Use "off", "full" (read every member of the list back) or "sample:N" (look up '
        'N random confirmed rows), e.g. --verify=sample:500 or verify = "full" in the export.',
        exit_code=ExitCode.USAGE,
    )


@dataclass(frozen=True, slots=True)
class RunOptions:
    policy: str = DROP_FIELD  # what a field Klaviyo refuses costs: the field, or the row
    confirm_timeout_s: float = DEFAULT_CONFIRM_TIMEOUT_MINUTES * 60
    verify: VerifyPlan = VerifyPlan("off")

    @classmethod
    def of(cls, export: Export, minutes: float | None, verify: str | None) -> RunOptions:
        """The run's options; RunError (usage) names a bad value and where it came from.
        `on_invalid_field`, `confirm_timeout_minutes` and `verify` are read from the export
        when it has them."""
        policy = str(getattr(export, "on_invalid_field", None) or DROP_FIELD)
        if policy not in (DROP_FIELD, REJECT_ROW):
            policy = DROP_FIELD
        where = "--confirm-timeout"
        if minutes is None:
            minutes = getattr(export, "confirm_timeout_minutes", None)
            where = f"confirm_timeout_minutes of export {export.name!r}"
        if minutes is None:
            minutes = DEFAULT_CONFIRM_TIMEOUT_MINUTES
        if isinstance(minutes, bool) or not math.isfinite(minutes) or minutes <= 0:
            raise RunError(
                f"{where} must be a positive number of minutes, not {minutes!r}",
                hint="It is how long a Klaviyo job may show no progress before its rows are "
                "reported unconfirmed (default 30).",
                exit_code=ExitCode.USAGE,
            )
        plan = parse_verify(verify if verify is not None else getattr(export, "verify", None))
        return cls(policy=policy, confirm_timeout_s=float(minutes) * 60, verify=plan)
