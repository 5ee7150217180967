"""Connection wizard: first launch, consent, verify against the sandbox, save; errors shown."""

from __future__ import annotations

import keyring
import keyring.backends.fail
from textual.widgets import Button, Checkbox, Static

from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.secrets import SERVICE
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.connection import ConnectionFormScreen, VerifyScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import SIZE, run_wizard, wait_screen, wait_until


async def test_first_launch_wizard_saves_connection_and_key(sandbox, memory_keyring) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_wizard(pilot, sandbox.base_url)
        screen = app.screen
        assert isinstance(screen, VerifyScreen)
        save = screen.query_one("#save", Button)
        await wait_until(pilot, lambda: not save.disabled)
        assert "Sandbox Store" in str(screen.query_one("#account", Static).render())
        await pilot.click("#save")
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
    config = load_config()
    conn = config.connections["acme-sandbox"]
    assert conn.display_name == "Acme sandbox"
    assert conn.base_url == sandbox.base_url
    assert conn.consent_accepted_at
    assert conn.consent_accepted_by
    assert memory_keyring.passwords[(SERVICE, "acme-sandbox")] == DEMO_KEY


async def test_wrong_key_shows_error_and_back(sandbox) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_wizard(pilot, sandbox.base_url, key="pk_" + "x" * 34)
        screen = app.screen
        await wait_until(pilot, lambda: screen.has_class("-failed"))
        status = str(screen.query_one("#status", Static).render())
        assert "What to do" in status
        assert screen.query_one("#save", Button).disabled
        await pilot.click("#back")
        await wait_screen(pilot, ConnectionFormScreen)
    assert not load_config().connections


async def test_missing_scope_is_shown_with_fix() -> None:
    limited = "pk_" + "L" * 34
    settings = SandboxSettings(
        rate_limits=False,
        job_delay=0.0,
        keys={limited: frozenset({"accounts:read", "lists:read", "profiles:read"})},
    )
    with SandboxServer(settings) as server:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await run_wizard(pilot, server.base_url, key=limited)
            screen = app.screen
            save = screen.query_one("#save", Button)
            await wait_until(pilot, lambda: not save.disabled)
            scopes = str(screen.query_one("#scopes", Static).render())
            assert "Missing scopes" in scopes
            assert "write" in scopes
            assert "lacks" in str(screen.query_one("#fix", Static).render())
            assert str(save.label) == "Save anyway"


async def test_no_keyring_backend_offers_env_var(sandbox) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, ConnectionFormScreen)
        form = app.screen
        backend = form.query_one("#backend", Static)
        await wait_until(pilot, lambda: "KLAVIYO_API_KEY" in str(backend.render()))
        assert "no usable OS keyring" in str(backend.render())
        assert backend.has_class("warning-text")
        assert form.query_one("#use-env", Checkbox).value is True


async def test_edit_connection_renames_and_keeps_the_stored_key(sandbox, memory_keyring) -> None:
    from textual.widgets import DataTable, Input

    from tests.support.tui import add_sandbox_connection

    add_sandbox_connection(sandbox.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        table = app.screen.query_one("#connections", DataTable)
        table.focus()
        await pilot.press("e")
        await wait_screen(pilot, ConnectionFormScreen)
        form = app.screen
        assert form.query_one("#key", Input).value == ""  # the stored key is never shown
        form.query_one("#display-name", Input).value = "Sandbox renamed"
        await pilot.click("#next")
        await wait_screen(pilot, VerifyScreen)  # consent was given already
        verify = app.screen
        save = verify.query_one("#save", Button)
        await wait_until(pilot, lambda: not save.disabled)
        await pilot.click("#save")
        await wait_screen(pilot, HomeScreen)
        await wait_until(
            pilot, lambda: app.config.connections["sandbox"].display_name == "Sandbox renamed"
        )
    assert load_config().connections["sandbox"].display_name == "Sandbox renamed"
    assert memory_keyring.passwords[(SERVICE, "sandbox")] == DEMO_KEY


async def test_remove_connection_asks_then_deletes_key(sandbox, memory_keyring) -> None:
    from textual.widgets import DataTable

    from tests.support.tui import add_sandbox_connection

    add_sandbox_connection(sandbox.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        app.screen.query_one("#connections", DataTable).focus()
        await pilot.press("x")
        await wait_until(pilot, lambda: bool(app.screen.query("#yes")))
        await pilot.press("n")  # changed my mind
        await wait_screen(pilot, HomeScreen)
        assert "sandbox" in app.config.connections
        await pilot.press("x")
        await wait_until(pilot, lambda: bool(app.screen.query("#yes")))
        await pilot.press("y")
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: not app.config.connections)
    assert not load_config().connections
    assert (SERVICE, "sandbox") not in memory_keyring.passwords
