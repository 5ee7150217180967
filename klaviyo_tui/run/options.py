"""How one run confirms and verifies: from the command line, else the export, else defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.run.resend import DROP_FIELD, REJECT_ROW
from klaviyo_tui.run.verify import VerifyPlan, parse_verify
from klaviyo_tui.store.config import Export

#: A job that shows no progress this long is not waited for: its rows are unconfirmed.
DEFAULT_CONFIRM_TIMEOUT_MINUTES = 30.0


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
