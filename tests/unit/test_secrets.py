"""secrets.py: env first, keyring second; read failures degrade, write failures raise."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail, null

from klaviyo_tui.demo.launch import MemoryKeyring
from klaviyo_tui.redaction import looks_like_key, mask_key, redact
from klaviyo_tui.store import secrets
from klaviyo_tui.store.secrets import (
    SERVICE,
    SecretsError,
    backend_info,
    delete_api_key,
    get_api_key,
    store_api_key,
)

KEY = "pk_" + "0123456789abcdefABCDEF0123456789ab"  # 34 after the prefix


class BrokenKeyring(MemoryKeyring):
    """Reads and writes blow up, like a locked or unreachable Secret Service."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("dbus: the name org.freedesktop.secrets was not provided")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"refused {password}")


class ForgetfulKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        pass


@pytest.fixture
def use_backend() -> Iterator[object]:
    previous = keyring.get_keyring()

    def swap(backend: keyring.backend.KeyringBackend) -> None:
        keyring.set_keyring(backend)

    yield swap
    keyring.set_keyring(previous)


def test_env_wins_over_keyring(monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring):
    memory_keyring.passwords[(SERVICE, "prod")] = "pk_fromkeyring"
    monkeypatch.setenv(secrets.ENV_VAR, f"  {KEY}\n")
    assert get_api_key("prod") == secrets.KeyLookup(KEY, "env")


def test_keyring_lookup_and_missing_hint(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.passwords[(SERVICE, "prod")] = KEY
    assert get_api_key("prod") == secrets.KeyLookup(KEY, "keyring")
    missing = get_api_key("stage")
    assert missing.key is None
    assert missing.source is None
    assert missing.hint
    assert "KLAVIYO_API_KEY" in missing.hint
    assert "'stage'" in missing.hint


def test_store_and_delete(memory_keyring: MemoryKeyring) -> None:
    assert store_api_key("prod", f" {KEY} ") is None
    assert memory_keyring.passwords[(SERVICE, "prod")] == KEY
    delete_api_key("prod")
    assert (SERVICE, "prod") not in memory_keyring.passwords
    delete_api_key("prod")  # already gone: fine


def test_store_warns_on_odd_key_but_stores() -> None:
    warning = store_api_key("prod", "pk_short1234567890")
    assert warning
    assert "unusual length" in warning
    assert "pk_short1234567890" not in warning
    assert "pk_" in (store_api_key("x", "abc123456789xyz") or "")
    with pytest.raises(SecretsError, match="empty"):
        store_api_key("prod", "   ")


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()])
def test_no_backend(use_backend, backend) -> None:
    use_backend(backend)
    info = backend_info()
    assert not info.usable
    lookup = get_api_key("prod")
    assert lookup.key is None
    assert lookup.hint
    assert "KLAVIYO_API_KEY" in lookup.hint
    assert "keyring" in lookup.hint
    with pytest.raises(SecretsError, match="KLAVIYO_API_KEY"):
        store_api_key("prod", KEY)
    delete_api_key("prod")  # nothing to delete: fine


def test_broken_backend_read_degrades_write_raises(use_backend) -> None:
    use_backend(BrokenKeyring())
    lookup = get_api_key("prod")
    assert lookup.key is None
    assert lookup.hint
    assert "could not be read" in lookup.hint
    assert "dbus" in lookup.hint
    with pytest.raises(SecretsError, match="refused to store") as info:
        store_api_key("prod", KEY)
    assert KEY not in str(info.value)
    assert mask_key(KEY) in str(info.value)


def test_write_that_does_not_stick_raises(use_backend) -> None:
    use_backend(ForgetfulKeyring())
    with pytest.raises(SecretsError, match="does not return it"):
        store_api_key("prod", KEY)


def test_chainer_and_plaintext_detection(use_backend) -> None:
    from keyring.backends.chainer import ChainerBackend

    class PlaintextKeyring(MemoryKeyring):
        pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"

    class Chain(ChainerBackend):
        inner: list[keyring.backend.KeyringBackend] = []

        @property
        def backends(self) -> list[keyring.backend.KeyringBackend]:
            return self.inner

    chain = Chain()
    chain.inner = [fail.Keyring()]
    use_backend(chain)
    assert not backend_info().usable
    chain.inner = [PlaintextKeyring()]
    info = backend_info()
    assert info.usable
    assert info.plaintext
    assert "warning" in info.message
    use_backend(MemoryKeyring())
    info = backend_info()
    assert info.usable
    assert not info.plaintext
    assert info.name.endswith("MemoryKeyring")


def test_mask_redact_and_looks_like() -> None:
    assert mask_key(KEY) == "pk_…89ab"
    assert mask_key("short") == "…"
    assert mask_key(None) == "(none)"
    assert looks_like_key(f"Authorization: Klaviyo-API-Key {KEY}")
    assert not looks_like_key("pk_id")
    assert redact(f"bad key {KEY}!", KEY) == "bad key pk_…89ab!"
    other = "pk_" + "Z" * 30
    assert other not in redact(f"x {other} y")
    assert redact("custom-secret here", "custom-secret") == "…cret here"
