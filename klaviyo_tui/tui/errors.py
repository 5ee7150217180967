"""An exception as a person reads it in the error panel: a title, the message, what to do.

User-facing errors (`AppError`) carry all three. Anything else is a bug: the panel says so in one
line and the traceback goes to the log file, never to the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from klaviyo_tui.errors import AppError
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.store import crashlog


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    title: str
    message: str
    hint: str

    def as_text(self) -> str:
        """Message and hint on two lines, for a status line or the run log."""
        return f"{self.message}\nWhat to do: {self.hint}" if self.hint else self.message


def describe_error(exc: BaseException) -> ErrorInfo:
    """The panel's text for `exc`; every string made safe to show (keys masked, no escapes)."""
    if isinstance(exc, AppError):
        return ErrorInfo(
            exc.title, safe_text(exc.message, keep_layout=True), safe_text(exc.hint or "")
        )
    message = crashlog.internal_message(exc, crashlog.record(exc))
    return ErrorInfo(
        "Internal error",
        safe_text(message),
        "This is a bug in klaviyo-tui. Please report it with the steps that led here.",
    )
