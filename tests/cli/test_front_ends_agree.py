"""Both front ends go through the same service layer: same config after the same edit, the same
client (with the connection's revision), and the CLI's one error path (message, hint, code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from textual.widgets import Static

from klaviyo_tui.cli.main import cli
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.pickers import ListPickerScreen
from tests.support.tui import SIZE, add_sandbox_connection, wait_screen, wait_until

SHARED_SEGMENTS = """\
# two exports share one segment; each has one of its own
[connections.c]
display_name = "C"
consent_accepted_at = "2026-11-28T10:00:00+00:00"

[segments.shared]
source = "/data/a.csv"   # kept: another export uses it

[segments.only_a]
source = "/data/b.csv"

[exports.a]
connection = "c"
list_id = "AAAAAA"
segments = ["shared", "only_a"]

[exports.a.mapping]
email = "email"

[exports.b]
connection = "c"
list_id = "BBBBBB"
segments = ["shared"]

[exports.b.mapping]
email = "email"
"""


async def test_exports_remove_leaves_the_same_config_from_cli_and_tui(tmp_path: Path) -> None:
    cli_file, tui_file = tmp_path / "cli.toml", tmp_path / "tui.toml"
    cli_file.write_text(SHARED_SEGMENTS)
    tui_file.write_text(SHARED_SEGMENTS)

    done = CliRunner().invoke(cli, ["--config", str(cli_file), "exports", "remove", "a", "--yes"])
    assert done.exit_code == 0, done.output

    app = make_app(tui_file)
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: "a" in app.config.exports)
        app.remove_export("a")
        await wait_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await wait_until(pilot, lambda: "a" not in app.config.exports)

    assert tui_file.read_text() == cli_file.read_text()
    config = load_config(cli_file)
    assert set(config.segments) == {"shared"} and set(config.exports) == {"b"}
    assert "# kept: another export uses it" in cli_file.read_text()


async def test_the_tui_client_carries_the_connections_revision(sandbox: SandboxServer) -> None:
    """A revision Klaviyo refuses must reach Klaviyo: the list picker shows the refusal."""
    add_sandbox_connection(sandbox.base_url)
    store = ConfigStore()
    old = store.config.connections["sandbox"]
    store.put_connection(
        Connection(
            old.name,
            old.display_name,
            old.base_url,
            "2001-01-01",
            old.consent_accepted_at,
            old.consent_accepted_by,
        )
    )
    store.save()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        app.push_screen(ListPickerScreen(app.config.connections["sandbox"]))
        await wait_screen(pilot, ListPickerScreen)
        await wait_until(pilot, lambda: bool(app.screen.query("#status.-error")))
        assert "2001-01-01" in str(app.screen.query_one("#status", Static).render())


def _configured(tmp_path: Path, base_url: str = "http://127.0.0.1:9") -> Path:
    path = Path(os.environ["KLAVIYO_TUI_CONFIG"])
    store = ConfigStore(path)
    store.put_connection(accept(Connection("c", "C", base_url=base_url)))
    source = tmp_path / "in.csv"
    source.write_text("email\na@example.com\n")
    store.put_segment(Segment("s", str(source)))
    store.put_export(Export("e", "c", "AAAAAA", ("s",), Mapping(email="email")))
    store.save()
    return path


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


def test_no_key_anywhere_names_the_variable_and_the_keyring(tmp_path: Path) -> None:
    _configured(tmp_path)
    done = _cli("run", "e", "--json")
    assert done.returncode == 4
    error = json.loads(done.stdout)
    assert error["exit_code"] == 4 and error["kind"] == "NoApiKey"
    for text in (error["error"] + error["hint"], done.stderr):
        assert "KLAVIYO_API_KEY" in text and "keyring" in text
        assert "keyrings.alt" not in text
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 2  # one message, one hint


def test_an_internal_error_is_one_line_and_the_traceback_goes_to_the_log(
    tmp_path: Path, monkeypatch: object
) -> None:
    _configured(tmp_path)
    code = (
        "import sys\n"
        "import klaviyo_tui.services.exports as exports\n"
        "def boom(*a, **k): raise ZeroDivisionError('a bug')\n"
        "exports.export_named = boom\n"
        "import klaviyo_tui.cli.exports as cli_exports\n"
        "cli_exports.service.export_named = boom\n"
        "from klaviyo_tui.cli.main import main\n"
        "main(['exports', 'show', 'e', ])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 70
    assert "Traceback" not in done.stderr
    assert "internal error (ZeroDivisionError: a bug)" in done.stderr
    log = Path(os.environ["KLAVIYO_TUI_DATA"]) / "logs" / "klaviyo-tui.log"
    assert str(log) in done.stderr
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_without_a_terminal_a_question_names_the_flag_and_declining_changes_nothing(
    tmp_path: Path,
) -> None:
    path = _configured(tmp_path)
    before = path.read_bytes()
    done = _cli("exports", "remove", "e")  # no terminal, no --yes, nothing on stdin
    assert done.returncode == 2
    assert "--yes" in done.stderr and "Aborted" not in done.stderr
    declined = _cli("exports", "remove", "e", stdin="n\n")
    assert declined.returncode == 0 and "nothing changed" in declined.stderr
    assert path.read_bytes() == before


def test_the_terminal_bar_counts_rows_settled_as_the_run_view_does() -> None:
    from klaviyo_tui.cli.output import bar_text
    from klaviyo_tui.events import JobConfirmed, RowsRead
    from klaviyo_tui.run.progress import RunProgress

    p = RunProgress("vip")
    assert bar_text(p, 0.0) == "read 0 rows, 0 confirmed"  # the first pass is counting
    p.apply(RowsRead(10_000_000, 9_000_000, 60, 40, unchanged=0, total=10_000_000))
    p.apply(JobConfirmed("j1", 0, 8_999_999, 0))
    line = bar_text(p, 61_234.5)
    # one row still waits: 99%, not a rounded-up 100%, and it fits an 80-column terminal
    assert line == "█" * 19 + "░  99% of 10,000,000 rows · 8,999,999 confirmed · 61,234/s"
    assert len(line) < 80
