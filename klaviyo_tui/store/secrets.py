"""API keys: the environment first (cron, CI), then the OS keyring; never files, logs or argv.

A failed keyring *read* degrades to "no key" plus a hint, so screens still render; a failed *write*
raises `SecretsError`, because swallowing it would report success and lose the key. Every message
that might carry a key goes through `redact` before a front end prints it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.redaction import mask_key, redact

SERVICE = "klaviyo-tui"
ENV_VAR = "KLAVIYO_API_KEY"

# A private Klaviyo key is `pk_` + 34 alphanumerics; other lengths are only warned about.
_KEY_SHAPE = re.compile(r"pk_[A-Za-z0-9]{34}")
ALTERNATIVES = (
    f"set the {ENV_VAR} environment variable, or install and unlock a keyring backend "
    "(Secret Service / gnome-keyring or KWallet on Linux, the macOS Keychain, "
    "the Windows Credential Locker)"
)


class SecretsError(AppError):
    """Storing, reading or deleting a key failed; the message says why (never the key)."""

    title = "API key problem"
    default_hint = f"Set the {ENV_VAR} environment variable, or unlock the OS keyring and retry."
    exit_code = ExitCode.AUTH


@dataclass(frozen=True, slots=True)
class KeyLookup:
    key: str | None
    source: Literal["env", "keyring"] | None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class BackendInfo:
    name: str
    usable: bool
    plaintext: bool
    message: str


def key_warning(key: str) -> str | None:
    """A warning (not an error) when a key doesn't look like `pk_` + 34 letters and digits."""
    key = key.strip()
    if _KEY_SHAPE.fullmatch(key):
        return None
    if not key.startswith("pk_"):
        return (
            "this doesn't look like a private API key (they start with pk_); "
            "public keys and OAuth tokens can't create bulk import jobs"
        )
    return f"this key ({mask_key(key)}) has an unusual length; check it was pasted completely"


def _backends(backend: KeyringBackend) -> list[KeyringBackend]:
    inner = getattr(backend, "backends", None)
    if isinstance(inner, list | tuple):
        return list(inner)
    return [backend]


def _is_plaintext(backend: KeyringBackend) -> bool:
    return type(backend).__module__.startswith("keyrings.alt")


def _is_dead(backend: KeyringBackend) -> bool:
    return type(backend).__module__ in {"keyring.backends.fail", "keyring.backends.null"}


def backend_info() -> BackendInfo:
    """Where a stored key would go, whether that works, and whether it is plain text on disk."""
    backend = keyring.get_keyring()
    cls = type(backend)
    name = f"{cls.__module__}.{cls.__name__}"
    live = [b for b in _backends(backend) if not _is_dead(b)]
    if not live:
        return BackendInfo(
            name, False, False, f"no usable OS keyring was found; to use a key, {ALTERNATIVES}"
        )
    if any(_is_plaintext(b) for b in live):
        return BackendInfo(
            name,
            True,
            True,
            "warning: this keyring backend (keyrings.alt) keeps keys in a file readable by your "
            f"user account; prefer an OS keyring or {ENV_VAR}",
        )
    return BackendInfo(name, True, False, f"keys are stored in {cls.__name__}")


def get_api_key(connection: str) -> KeyLookup:
    """The key for `connection`: `KLAVIYO_API_KEY` wins, then the keyring. Never raises.

    Without a key, `hint` says where we looked (the variable and the keyring), in our own words:
    the keyring library's advice (install keyrings.alt) is not ours to give.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return KeyLookup(env, "env")
    try:
        stored = keyring.get_password(SERVICE, connection)
    except keyring.errors.NoKeyringError:
        return KeyLookup(None, None, _looked(connection, "no OS keyring is available here"))
    except Exception as exc:  # any backend failure (locked, no D-Bus) means "no key"
        reason = (redact(str(exc)).strip().splitlines() or [type(exc).__name__])[0][:200]
        return KeyLookup(
            None, None, _looked(connection, f"the OS keyring could not be read ({reason})")
        )
    if stored and stored.strip():
        return KeyLookup(stored.strip(), "keyring")
    if not backend_info().usable:
        return KeyLookup(None, None, _looked(connection, "no usable OS keyring was found here"))
    return KeyLookup(
        None, None, _looked(connection, f"the OS keyring holds no key for {connection!r}")
    )


def _looked(connection: str, keyring_state: str) -> str:
    return f"{ENV_VAR} is not set and {keyring_state}"


def store_api_key(connection: str, key: str) -> str | None:
    """Save `key` in the keyring; returns a format warning or None. Raises `SecretsError`."""
    key = key.strip()
    if not key:
        raise SecretsError("the API key is empty; paste the private key (pk_…) from Klaviyo")
    info = backend_info()
    if not info.usable:
        raise SecretsError(f"cannot store the key: {info.message}")
    try:
        keyring.set_password(SERVICE, connection, key)
        readback = keyring.get_password(SERVICE, connection)
    except Exception as exc:
        reason = redact(str(exc), key) or type(exc).__name__
        raise SecretsError(
            f"the keyring refused to store the key for {connection!r} ({reason}); "
            f"unlock your keyring and retry, or {ALTERNATIVES}"
        ) from None
    if readback != key:
        raise SecretsError(
            f"the keyring accepted the key for {connection!r} but does not return it; "
            f"it may be disabled or locked. {ALTERNATIVES[0].upper()}{ALTERNATIVES[1:]}"
        )
    return key_warning(key)


def delete_api_key(connection: str) -> None:
    """Forget the stored key. A missing entry is fine; a backend failure raises `SecretsError`."""
    try:
        if keyring.get_password(SERVICE, connection) is None:
            return
        keyring.delete_password(SERVICE, connection)
    except (keyring.errors.PasswordDeleteError, keyring.errors.NoKeyringError):
        return  # nothing stored, or nowhere it could have been stored
    except Exception as exc:
        reason = redact(str(exc)) or type(exc).__name__
        raise SecretsError(
            f"could not remove the key for {connection!r} from the keyring ({reason}); "
            "unlock your keyring and retry"
        ) from None
