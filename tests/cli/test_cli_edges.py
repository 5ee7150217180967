"""The CLI at its edges, in real subprocesses: --json carrying exact values that stay inert on a
terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.test_cli import cli
from tests.support.engine import write_config, write_customers


def _export(tmp_path: Path, **mapping: str) -> None:
    """Export `customers` reading one CSV (no Klaviyo is needed to show or list it)."""
    source = write_customers(tmp_path / "c.csv", [{"email": "a@example.com"}])
    write_config(
        Path(os.environ["KLAVIYO_TUI_CONFIG"]),
        base_url="http://127.0.0.1:9",
        list_id="AAAAAA",
        sources={"main": source},
        mapping={"email": "email", **mapping},
    )


def test_json_carries_exact_values_and_stays_inert(tmp_path: Path) -> None:
    first, last = "first\nname", "esc\x1b[31mcol\x9b1m ‮é"  # C1, a bidi override, é
    _export(tmp_path, first_name=first, last_name=last)
    done = cli("exports", "show", "customers", "--json")
    assert done.returncode == 0, done.stderr
    mapping = json.loads(done.stdout)["mapping"]
    assert (mapping["first_name"], mapping["last_name"]) == (first, last)
    assert done.stdout.isascii()  # every control and non-ASCII character escaped
    assert "\x1b" not in done.stdout and "\\u001b" in done.stdout
    shown = cli("exports", "show", "customers")  # as text, the controls are made visible
    assert "\x1b" not in shown.stdout and "esc\\x1b[31mcol\\x9b1m" in shown.stdout
