"""The App's config: loaded, saved and reloaded off the event loop (a mixin of KlaviyoApp).

Screens read `app.config` (a reactive they can watch) and change it through `save_config`, which
edits the ConfigStore in a thread and saves it atomically. The CLI (in another terminal) or an
editor may change the file while the app is open: every `CONFIG_POLL_S` the app looks, and shows
the file as it is now; an edit is applied to the file as it is when it is saved, so whatever
else changed in it stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.worker import Worker, WorkerFailed

from klaviyo_tui.store.config import Config, ConfigError
from klaviyo_tui.tui.errors import describe_error

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp

R = TypeVar("R")

#: How often the app looks for changes that something else made to the config file.
CONFIG_POLL_S = 2.0
#: How long a change is left to finish before the file is read: an editor or a script that
#: writes the file in place empties it first, and an empty file is a valid, empty config.
SETTLE_S = 0.2


class ConfigHost:
    """Config state of the App: `config`, `store`, `config_error`, and the thread helper."""

    config_path: Path
    config: Config
    store: Any  # ConfigStore once loaded
    config_error: str | None
    _poll_error: str | None = None  # the last unreadable file's message, said once
    _polling = False  # a look at the file is under way

    def _host(self) -> KlaviyoApp:
        from klaviyo_tui.tui.app import KlaviyoApp

        assert isinstance(self, KlaviyoApp)
        return self

    def load_config(self) -> None:
        """Read the config file in a thread; a broken file shows an error panel, not a crash."""
        self._host().run_worker(self._read_config, thread=True, exit_on_error=False, group="config")

    def _read_config(self) -> None:
        from klaviyo_tui.store.config_store import ConfigStore

        app = self._host()
        try:
            store = ConfigStore(self.config_path)
        except ConfigError as exc:
            app.call_from_thread(self._config_failed, exc)
            return
        app.call_from_thread(self._config_loaded, store)

    def _config_loaded(self, store: Any) -> None:
        app = self._host()
        first = self.store is None
        self.store = store
        self.config = store.config
        if first and not store.config.connections:
            app.connection_wizard()

    def poll_config(self) -> None:
        """Look for changes made to the file by something else, in a thread (a file read); one
        look at a time."""
        if self.store is not None and self.config_error is None and not self._polling:
            self._polling = True
            self._host().run_worker(
                self._read_if_changed, thread=True, exit_on_error=False, group="config-poll"
            )

    def _read_if_changed(self) -> None:
        from klaviyo_tui.store.config_store import ConfigStore

        app = self._host()
        try:
            if not self.store.changed_on_disk():
                return
            time.sleep(SETTLE_S)  # a file being written (emptied, then filled) is read once done
            store = ConfigStore(self.config_path)
            app.call_from_thread(self._config_reread, store)  # waits: the next look sees it
        except ConfigError as exc:
            app.call_from_thread(self._config_unreadable, exc)
        finally:
            self._polling = False

    def _config_reread(self, store: Any) -> None:
        self._poll_error = None
        self.store = store
        self.config = store.config

    def _config_unreadable(self, error: ConfigError) -> None:
        """Said once per problem; the app keeps the config it had (and saves nothing over it)."""
        if error.message != self._poll_error:
            self._poll_error = error.message
            message = f"{error.message} The app shows the config as it was read before."
            self._host().notify(message, title="The config file changed", severity="warning")

    def _config_failed(self, error: ConfigError) -> None:
        from klaviyo_tui.tui.screens.dialogs import ErrorModal

        self.config_error = error.message
        self._host().push_screen(ErrorModal(describe_error(error)))

    async def in_thread(self, fn: Callable[..., R], *args: Any) -> R:
        """Run blocking work (keyring, SQLite, pandas, files) in a thread worker; await it."""
        worker: Worker[R] = self._host().run_worker(
            partial(fn, *args), thread=True, exit_on_error=False, group="io"
        )
        try:
            return await worker.wait()
        except WorkerFailed as failed:
            raise failed.error from None

    async def save_config(self, edit: Callable[[Any], None]) -> Config:
        """Apply an edit to the ConfigStore and save it atomically, off the event loop."""
        from klaviyo_tui.store.config_store import ConfigStore

        if self.store is None:
            self.store = await self.in_thread(ConfigStore, self.config_path)

        store = self.store

        def apply() -> Config:
            store.reload()  # the file as it is now: what else changed in it stays
            edit(store)
            store.save()
            config: Config = store.config
            return config

        self.config = await self.in_thread(apply)
        return self.config

    async def reload_config(self) -> Config:
        """Re-read the file after a service changed it."""
        from klaviyo_tui.store.config_store import ConfigStore

        self.store = await self.in_thread(ConfigStore, self.config_path)
        config: Config = self.store.config
        self.config = config
        return config
