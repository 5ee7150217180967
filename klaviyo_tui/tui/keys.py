"""Keys typed while a screen is being shown wait for it, instead of falling on the floor.

Textual sends a key to the focused widget, or to the screen when nothing has focus yet. Right after
`n` on Home the builder is still mounting: the export name typed at once would go nowhere, or to
a widget that loses focus a moment later; keys typed before `n` was acted on are already queued
in Home's table and come back up unhandled. So after every screen change the App holds keys until
the new screen is mounted and has refreshed once (its first focus is set by then), then replays
them in order. The hold never lasts longer than `LIMIT`.
"""

from __future__ import annotations

import time
from typing import Any

from textual import events
from textual.app import App
from textual.screen import Screen
from textual.timer import Timer

LIMIT = 1.0  # seconds: a screen that takes longer gets the keys anyway
POLL = 0.01


class KeyHold:
    """Hold keys between a screen change and that screen being ready; then replay them."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.screen: Screen[Any] | None = None
        self.held: list[events.Key] = []
        self._expecting = False
        self._since = 0.0
        self._timer: Timer | None = None

    def expect(self) -> None:
        """A screen is on its way (a flow's worker will push it): hold keys from now on."""
        self._expecting = True
        self._start(self.app.screen)

    def screen_changed(self, screen: Screen[Any]) -> None:
        """Start holding (subscribed to `App.screen_change_signal`)."""
        self._expecting = False
        self._start(screen)

    def _start(self, screen: Screen[Any]) -> None:
        self.screen = screen
        self._since = time.monotonic()
        if self._timer is None:
            self._timer = self.app.set_interval(POLL, self._check, name="key-hold")

    def hold(self, event: events.Event) -> bool:
        """True when `event` is a key that must wait; it is kept and replayed later.

        Both kinds are held: keys arriving from the terminal, and keys that were already queued
        in the old screen's focused widget and bubbled back up to the App unhandled (typed right
        after `n`, they were sent to Home's table before `n` was acted on).
        """
        if self.screen is None or not isinstance(event, events.Key):
            return False
        self.held.append(event)
        if time.monotonic() - self._since > 2 * LIMIT:  # the release never came: never get stuck
            self._release(self.screen)
        return True

    def _check(self) -> None:
        screen = self.screen
        late = time.monotonic() - self._since > LIMIT
        if screen is None or not (late or (screen.is_mounted and not self._expecting)):
            return
        self._expecting = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        target = screen if screen.is_mounted and not late else self.app
        if not target.call_after_refresh(self._release, screen):
            self._release(screen)

    def _release(self, screen: Screen[Any]) -> None:
        if self.screen is not screen:  # another screen came in the meantime: keep holding
            return
        self.screen = None
        keys, self.held = self.held, []
        for key in keys:
            self.app.post_message(events.Key(key.key, key.character))
