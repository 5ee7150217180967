"""`klaviyo-tui demo`: the whole flow against an in-process sandbox, with throwaway everything.

The sandbox runs with Klaviyo's published rate limits, a 2.5 s job delay (time to watch the run
and to cancel it) and a few rows that fail inside jobs, so the run view has something to show.
Config, history and the keyring are temporary: the user's own config and OS keyring are never
touched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

DEMO_ROWS = 25_000
ENV_OVERRIDES = ("KLAVIYO_TUI_CONFIG", "KLAVIYO_TUI_DATA", "KLAVIYO_API_KEY")


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps keys in memory: the demo's (so the OS keyring stays
    untouched) and the test suite's. Deleting a missing entry raises, as real backends do."""

    priority = 1

    def __init__(self) -> None:
        # keyring leaves KeyringBackend.__init__ unannotated (it reads properties from the env)
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError(f"no key stored for {username!r}")


@contextmanager
def demo_environment(rows: int = DEMO_ROWS, *, job_delay: float = 2.5) -> Iterator[object]:
    """Temp dirs, sample data, env vars, memory keyring and a running sandbox; all undone after."""
    from klaviyo_tui.demo.sample_data import generate_customers
    from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
    from klaviyo_tui.sandbox.server import SandboxServer
    from klaviyo_tui.tui.app import DemoInfo

    saved_env = {name: os.environ.get(name) for name in ENV_OVERRIDES}
    saved_keyring = keyring.get_keyring()
    with tempfile.TemporaryDirectory(prefix="klaviyo-tui-demo-") as tmp:
        root = Path(tmp)
        (root / "config").mkdir()
        (root / "data").mkdir()
        samples = root / "samples"
        samples.mkdir()
        sample = samples / "customers.csv"
        generate_customers(sample, rows, invalid_rate=0.03, seed=7)
        os.environ["KLAVIYO_TUI_CONFIG"] = str(root / "config" / "config.toml")
        os.environ["KLAVIYO_TUI_DATA"] = str(root / "data")
        os.environ.pop("KLAVIYO_API_KEY", None)  # the demo key must be the one used
        keyring.set_keyring(MemoryKeyring())
        settings = SandboxSettings(rate_limits=True, faults={"rowfail": 0.002}, job_delay=job_delay)
        server = SandboxServer(settings)
        try:
            server.start()
            yield DemoInfo(server.base_url, DEMO_KEY, sample)
        finally:
            server.stop()
            keyring.set_keyring(saved_keyring)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def run_demo() -> int:
    """Start the sandbox and sample data, open the TUI in demo mode, clean up on exit."""
    from klaviyo_tui.tui.app import DemoInfo, run_app

    print("Starting the demo: generating sample customers and the sandbox Klaviyo…", flush=True)
    with demo_environment() as demo:
        assert isinstance(demo, DemoInfo)
        return run_app(None, demo=demo)
