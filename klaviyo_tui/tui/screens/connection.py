"""The connection wizard: its flow, and its form and verify steps (consent is in consent.py).

`connection_wizard` runs as one App worker that awaits the steps in order; each step dismisses
with its result, or None for "back".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import (
    Button,
    Collapsible,
    Footer,
    Header,
    Input,
    Label,
    LoadingIndicator,
    Static,
)

from klaviyo_tui.redaction import mask_key, printable, safe_text
from klaviyo_tui.store.config import DEFAULT_BASE_URL, Connection
from klaviyo_tui.store.config_read import check_base_url
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.widgets.banner import DemoBanner
from klaviyo_tui.tui.widgets.toggles import Checkbox

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import DemoInfo, KlaviyoApp


DEMO_KEYRING = "the demo's in-memory keyring (keys vanish when the demo ends)"


@dataclass(frozen=True, slots=True)
class ConnectionDraft:
    """What the form collected. The key stays in memory only, until the keyring gets it."""

    name: str
    display_name: str
    base_url: str
    api_key: str  # empty: keep the stored key (edit) or read KLAVIYO_API_KEY
    use_env: bool
    consent: tuple[str, str] | None  # (accepted_at UTC ISO, accepted_by OS user)
    revision: str | None = None

    def with_consent(self, consent: tuple[str, str]) -> ConnectionDraft:
        return replace(self, consent=consent)

    def connection(self) -> Connection:
        extra: dict[str, Any] = {"revision": self.revision} if self.revision else {}
        at, by = self.consent or (None, None)
        return Connection(
            name=self.name,
            display_name=self.display_name,
            base_url=self.base_url,
            consent_accepted_at=at,
            consent_accepted_by=by,
            **extra,
        )


def slugify(text: str, taken: set[str]) -> str:
    """A config-table and keyring-friendly name derived from the display name, unique."""
    from klaviyo_tui.services.segments import slug  # only when saving: a light first frame

    base = slug(text, "connection")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


class ConnectionFormScreen(BaseScreen[ConnectionDraft | None]):
    """Step 1: display name, API key (masked), where the key will be stored, base URL."""

    BINDINGS = [
        *HELP_KEYS,
        Binding("escape", "cancel", "Cancel"),
        Binding("f2", "use_demo_key", "Paste demo key", show=False),
    ]

    def __init__(
        self,
        existing: Connection | None,
        draft: ConnectionDraft | None = None,
        demo: DemoInfo | None = None,
    ) -> None:
        super().__init__()
        self.existing = existing
        self.draft = draft
        self.demo = demo
        self.backend_usable = True

    def compose(self) -> ComposeResult:
        d, e = self.draft, self.existing
        # data prefills the fields: control characters shown as escapes, never sent to the terminal
        name = printable(d.display_name if d else e.display_name if e else "")
        base_url = printable(d.base_url if d else e.base_url if e else DEFAULT_BASE_URL)
        title = "Edit connection" if e else "New connection"
        yield Header()
        if self.demo:
            yield DemoBanner(self.demo, show_button=True)
        with VerticalScroll(classes="form", can_focus=False):  # arrows still scroll it
            yield Label(f"{title} · step 1 of 3", classes="step-title")
            yield Label("Display name", classes="field-label")
            yield Input(name, placeholder="e.g. Acme production", id="display-name", compact=True)
            yield Static(
                "What this Klaviyo account is for; exports pick their connection by this name.",
                classes="help",
            )
            yield Label("Private API key", classes="field-label")
            placeholder = "leave empty to keep the stored key" if e else "pk_…"
            yield Input(
                d.api_key if d else "",
                password=True,
                placeholder=placeholder,
                id="key",
                compact=True,
            )
            yield Static(
                "Klaviyo › Settings › API keys › Create private key; it needs lists and "
                "profiles (read, write) and, to show the account name, accounts:read.",
                classes="help",
            )
            yield Static("Checking where the key will be stored…", id="backend", classes="help")
            yield Checkbox(
                "Don't store the key; I will set KLAVIYO_API_KEY",
                d.use_env if d else False,
                id="use-env",
            )
            with Collapsible(title="Advanced", collapsed=base_url == DEFAULT_BASE_URL):
                yield Label("Base URL", classes="field-label")
                yield Input(base_url, id="base-url", compact=True)
                yield Static(
                    "Klaviyo's API lives at https://a.klaviyo.com; change this only to rehearse "
                    "against the sandbox (klaviyo-tui sandbox).",
                    classes="help",
                )
            yield Static("", id="form-error", classes="error-text")
        with Horizontal(classes="buttons"):
            yield Button("Cancel", id="cancel", compact=True)
            yield Button("Next: privacy ›", id="next", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#display-name", Input).focus()
        self._check_backend()

    @work(thread=True, exit_on_error=False, group="backend")
    def _check_backend(self) -> None:
        from klaviyo_tui.services.connections import key_storage

        info = key_storage()
        message = info.message
        if self.demo is not None and info.name.endswith(".MemoryKeyring"):
            message = DEMO_KEYRING
        self.app.call_from_thread(self._show_backend, info.usable, info.plaintext, message)

    def _show_backend(self, usable: bool, plaintext: bool, message: str) -> None:
        self.backend_usable = usable
        backend = self.query_one("#backend", Static)
        backend.update(Content(f"Key storage: {safe_text(message)}"))
        backend.set_class(not usable or plaintext, "warning-text")
        if not usable:
            self.query_one("#use-env", Checkbox).value = True

    def action_use_demo_key(self) -> None:
        if not self.demo:
            return
        self.query_one("#key", Input).value = self.demo.api_key
        self.query_one("#base-url", Input).value = self.demo.base_url
        self.query_one(Collapsible).collapsed = False
        name = self.query_one("#display-name", Input)
        if not name.value:
            name.value = "Demo sandbox"
        self.notify("Demo key and sandbox URL filled in.", timeout=3)

    @on(DemoBanner.UseKey)
    def _banner_use_key(self) -> None:
        self.action_use_demo_key()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        error = self.query_one("#form-error", Static)
        display = self.query_one("#display-name", Input).value.strip()
        key = self.query_one("#key", Input).value.strip()
        base_url = self.query_one("#base-url", Input).value.strip() or DEFAULT_BASE_URL
        use_env = self.query_one("#use-env", Checkbox).value
        problem = None
        if not display:
            problem = "Give the connection a display name."
        elif not key and not self.existing and not use_env:
            problem = "Paste the private API key (pk_…), or tick the KLAVIYO_API_KEY option."
        elif url_problem := check_base_url(base_url):
            problem = f"Base URL: {url_problem}."
        elif not use_env and not key and self.existing is None:
            problem = "Paste the API key."
        if problem:
            error.update(Content(safe_text(problem)))
            return
        app = self.app
        if self.existing:
            name = self.existing.name
            consent = (
                (self.existing.consent_accepted_at, self.existing.consent_accepted_by or "")
                if self.existing.consent_accepted_at
                else None
            )
            revision: str | None = self.existing.revision
        else:
            name = self.draft.name if self.draft else slugify(display, set(app.config.connections))
            consent = self.draft.consent if self.draft else None
            revision = None
        self.dismiss(ConnectionDraft(name, display, base_url, key, use_env, consent, revision))


class VerifyScreen(BaseScreen[Connection | None]):
    """Step 3: check the key against Klaviyo, show account and scopes, then save."""

    BINDINGS = [*HELP_KEYS, Binding("escape", "back", "Back")]

    def __init__(self, draft: ConnectionDraft) -> None:
        super().__init__()
        self.draft = draft
        self.key: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(classes="form", can_focus=False):  # arrows still scroll it
            name = safe_text(self.draft.display_name)
            yield Label(Content(f"{name} · step 3 of 3: connect"), classes="step-title")
            checking = f"Checking the key against {safe_text(self.draft.base_url)} …"
            yield Static(Content(checking), id="status")
            yield LoadingIndicator(id="spinner")
            with Vertical(id="result"):
                yield Static("", id="account")
                yield Static("", id="scopes")
                yield Static("", id="fix", classes="help")
        with Horizontal(classes="buttons"):
            yield Button("‹ Back", id="back", compact=True)
            yield Button("Retry", id="retry", compact=True)
            yield Button(
                "Save connection", id="save", variant="primary", disabled=True, compact=True
            )
        yield Footer()

    def on_mount(self) -> None:
        self.verify()

    @work(exclusive=True, group="verify", exit_on_error=False)
    async def verify(self) -> None:
        from klaviyo_tui.services.connections import api_key_for, check_key

        app = self.app
        spinner = self.query_one("#spinner", LoadingIndicator)
        status = self.query_one("#status", Static)
        save = self.query_one("#save", Button)
        spinner.display = True
        save.disabled = True
        self.remove_class("-failed")
        connection = self.draft.connection()
        try:
            key = self.draft.api_key or await app.in_thread(api_key_for, connection)
            self.key = key
            check = await check_key(connection, key)
        except Exception as exc:
            info = describe_error(exc)
            self._failed(info.title, info.as_text())
            return
        finally:
            spinner.display = False
        status.update(Content(f"Connected with key {mask_key(key)}."))
        account = check.account_name or "(name hidden: the key lacks accounts:read)"
        self.query_one("#account", Static).update(
            Content.assemble("Account: ", (safe_text(account), "bold"))
        )
        granted = ", ".join(s for s, ok in sorted(check.granted.items()) if ok) or "none"
        scopes = self.query_one("#scopes", Static)
        if check.missing:
            scopes.update(
                Content.assemble(
                    ("Missing scopes:", "bold"),
                    f" {', '.join(check.missing)}   (granted: {granted})",
                )
            )
            scopes.add_class("warning-text")
        else:
            scopes.update(Content(f"Scopes: {granted}"))
            scopes.remove_class("warning-text")
        self.query_one("#fix", Static).update(Content(safe_text(check.fix_hint)))
        save.label = "Save connection" if check.ok else "Save anyway"
        save.disabled = False
        save.focus()

    def _failed(self, title: str, message: str) -> None:
        self.query_one("#spinner", LoadingIndicator).display = False
        self.add_class("-failed")
        status = self.query_one("#status", Static)
        status.update(
            Content.assemble((safe_text(title), "bold"), "\n", safe_text(message, keep_layout=True))
        )
        self.query_one("#back", Button).focus()

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self.verify()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.save()

    @work(exclusive=True, group="save", exit_on_error=False)
    async def save(self) -> None:
        from klaviyo_tui.services.connections import save_connection

        app = self.app
        connection = self.draft.connection()
        key = self.draft.api_key if not self.draft.use_env else None
        try:
            saved = await app.in_thread(save_connection, app.config_path, connection, key or None)
        except Exception as exc:
            info = describe_error(exc)
            self._failed(info.title, info.as_text())
            return
        if saved.warning:
            self.notify(saved.warning, severity="warning", markup=False)
        elif self.draft.use_env:
            self.notify(
                "The key was not stored. Set KLAVIYO_API_KEY before running exports.",
                severity="warning",
                timeout=8,
            )
        await app.reload_config()
        self.dismiss(connection)


async def connection_wizard(app: KlaviyoApp, existing: Connection | None = None) -> None:
    """Form → consent → verify and save; "back" from a step returns to the form."""
    from klaviyo_tui.tui.screens.consent import ConsentScreen

    draft = None
    while True:
        draft = await app.push_screen_wait(ConnectionFormScreen(existing, draft, app.demo))
        if draft is None:
            return
        if draft.consent is None:
            consent = await app.push_screen_wait(ConsentScreen(draft.display_name))
            if consent is None:
                continue
            draft = draft.with_consent(consent)
        saved = await app.push_screen_wait(VerifyScreen(draft))
        if saved is not None:
            app.notify(f"Connection “{saved.display_name}” saved.", title="Saved")
            return
