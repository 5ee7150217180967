"""`klaviyo-tui lists` with a list name holding a bidi override, a zero-width space and a line
separator: shown as escapes, and the ids still line up."""

from __future__ import annotations

from klaviyo_tui.sandbox.server import SandboxServer
from tests.support.cli import account_lists, connect, invoke

HOSTILE = "abc\u202eevil\u200b\u2028x"


def test_lists_escape_invisible_characters_and_keep_ids_aligned(sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    created = invoke("lists", "create", HOSTILE)
    assert created.exit_code == 0, created.output
    assert invoke("lists", "create", "plain").exit_code == 0
    ids = account_lists(sandbox.base_url)
    done = invoke("lists")
    assert done.exit_code == 0, done.output
    assert not any(c in done.stdout for c in "\u202e\u200b\u2028")
    rows = done.stdout.splitlines()
    shown = "abc\\u202eevil\\u200b\\u2028x"
    assert rows == [f"{shown}  {ids[HOSTILE]}", f"{'plain':<{len(shown)}}  {ids['plain']}"]
