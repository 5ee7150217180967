"""Turn exceptions into what a person reads in an error panel: what happened, then what to do."""

from __future__ import annotations

from dataclasses import dataclass

# Exceptions whose str() is already written for people (core modules promise this).
_HUMAN = {
    "ConfigError": ("Configuration problem", "Fix the file named above, then try again."),
    "SecretsError": (
        "Could not store the API key",
        "Set the KLAVIYO_API_KEY environment variable instead, or install a keyring backend.",
    ),
    "SourceError": ("Could not read the source", "Check the path, format or query, then retry."),
    "FilterError": ("The filter is not valid", "Write it in SQL WHERE syntax, e.g. country = 'US'"),
    "AuthError": ("Klaviyo refused the API key", "Check the key (a private key, pk_…) and retry."),
    "ScopeError": (
        "The API key lacks a permission",
        "Edit the key's scopes in Klaviyo, then retry.",
    ),
    "NotFoundError": (
        "Not found in Klaviyo",
        "Check the list ID or pick the list from the account.",
    ),
    "UnavailableError": ("Klaviyo is unavailable", "Wait a minute and retry; the run can resume."),
    "InvalidBaseURL": (
        "The base URL is not allowed",
        "Use https://a.klaviyo.com or a loopback URL.",
    ),
    "RunError": ("The export cannot run", "Do what the message says, then run it again."),
    "RunInProgress": ("This export is already running", "Wait for it to finish, or open it."),
}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    title: str
    message: str
    hint: str


def describe_error(exc: BaseException, secret: str | None = None) -> ErrorInfo:
    """A title, the exception's own message (never a traceback) and a next step."""
    name = type(exc).__name__
    message = str(exc) or name
    if secret:
        message = message.replace(secret, "pk_…")
    kinds = [getattr(exc, "kind", ""), *(klass.__name__ for klass in type(exc).__mro__)]
    for kind in kinds:
        if kind in _HUMAN:
            title, hint = _HUMAN[kind]
            return ErrorInfo(title, message, hint)
    if hasattr(exc, "exit_code"):  # a KlaviyoError subclass we do not know by name
        return ErrorInfo("Klaviyo request failed", message, "Check the connection and retry.")
    if isinstance(exc, OSError):
        return ErrorInfo("File or network problem", message, "Check the path or address and retry.")
    return ErrorInfo(
        f"Unexpected error ({name})",
        message,
        "Please retry; if it happens again, report it with the steps that led here.",
    )
