"""A segment filter is data, never code: hostile filters from a shared config.toml must not run.

Filters used to reach pandas `DataFrame.eval`, where `@pd.io.common.os.system(...)` resolves to
os.system. Each payload here points at a marker file; the marker must never appear, whether the
filter is applied directly, counted, previewed, read by the pipeline, run from the CLI
(`run`, `run --dry-run`, `run --due`) or merely shown in the TUI's export builder.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from textual.widgets import Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.input.filters import (
    FilterError,
    apply_filter,
    count_matching,
    preview_matching,
)
from klaviyo_tui.input.pipeline import iter_validated
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.engine import create_list, import_jobs, write_config, write_customers
from tests.support.tui import SIZE, add_sandbox_connection, sample_csv, wait_screen, wait_until

PAYLOADS = [
    "@pd.io.common.os.system('touch {m}') == 0 or email == email",  # the reported one
    '@pd.io.common.os.system("touch {m}") == 0',
    "email == email or @pd.io.common.os.system('touch {m}') == 0",
    "pd.io.common.os.system('touch {m}') == 0",
    "__import__('os').system('touch {m}') == 0",
    "`email`.__class__.__init__.__globals__['os'].system('touch {m}') == 0",
    "email = 'x'; COPY t TO PROGRAM 'touch {m}'",
    "email IN (SELECT system('touch {m}'))",
    "email = 'x' /* @pd.io.common.os.system('touch {m}') */",
    "email = 'x' -- @pd.io.common.os.system('touch {m}')",
    "email = 'x'\n@pd.io.common.os.system('touch {m}') == 0",
    "email == @__builtins__['__import__']('os').system('touch {m}')",
    "email = read_text('{m}') OR email = writefile('{m}', 'x')",
]


def hostile(payload: str, marker: Path) -> str:
    return payload.replace("{m}", str(marker))


def people() -> pd.DataFrame:
    return pd.DataFrame({"email": ["a@x.com", "b@x.com"], "name": ["A", "B"]}, dtype="str")


@pytest.fixture
def no_code_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any use of pandas' expression engine or Python's eval/exec fails the test.

    A harmless filter runs first: the SQL parser is imported on first use, and importing it runs
    `exec` (dataclasses, namedtuples), which is not a filter running; run alone, this file would
    otherwise fail on the import."""
    apply_filter(people(), "email = 'warm-up'")

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("a filter reached an expression evaluator")

    for name in ("eval", "query"):
        monkeypatch.setattr(pd.DataFrame, name, boom)
    monkeypatch.setattr(pd, "eval", boom)
    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)


@pytest.mark.usefixtures("no_code_paths")
@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_filters_never_run(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(FilterError) as info:
        apply_filter(people(), hostile(payload, marker))
    assert info.value.exit_code == ExitCode.INPUT
    assert not marker.exists()


@pytest.mark.usefixtures("no_code_paths")
def test_a_payload_inside_quotes_is_only_text(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"@pd.io.common.os.system(''touch {marker}'') == 0"
    df = pd.DataFrame({"email": ["a@x.com", text.replace("''", "'")]}, dtype="str")
    assert list(apply_filter(df, f"email = '{text}'").index) == [1]
    assert not marker.exists()


def test_the_sql_parser_never_loads_its_python_executor() -> None:
    apply_filter(people(), "email LIKE '%@x.com' AND name IN ('A', 'B')")
    code = (
        "import sys, pandas as pd\n"
        "from klaviyo_tui.input.filters import apply_filter\n"
        "apply_filter(pd.DataFrame({'a': ['1']}), 'a > 0')\n"
        "print('sqlglot.executor' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def _segment(tmp_path: Path, expr: str) -> Segment:
    source = write_customers(tmp_path / "c.csv", [{"email": "a@x.com"}, {"email": "b@x.com"}])
    return Segment("s", str(source), filter=expr)


@pytest.mark.usefixtures("no_code_paths")
@pytest.mark.parametrize("payload", PAYLOADS[:5])
def test_the_pipeline_count_and_preview_refuse_hostile_filters(
    tmp_path: Path, payload: str
) -> None:
    marker = tmp_path / "pwned"
    segment = _segment(tmp_path, hostile(payload, marker))
    export = Export("e", "c", "L", ("s",), Mapping(email="email"))
    with pytest.raises(FilterError):
        list(iter_validated(export, {"s": segment}))
    with pytest.raises(FilterError):
        count_matching(segment)
    with pytest.raises(FilterError):
        preview_matching(segment, 5)
    assert not marker.exists()


def test_long_hostile_input_is_truncated_in_messages(tmp_path: Path) -> None:
    cases = [
        "@" + "x" * 5_000,
        "email = '" + "A" * 5_000 + "' AND " + "b" * 5_000 + " = 1",
        "`" + "n" * 5_000 + "` = 1",
        "email == 'x' & " + "(name == 'y') & " * 300,
        "email = 'x" + "\x1b[31m" * 500,
        "f" * 3_000 + "(1) = 1",
    ]
    for expr in cases:
        with pytest.raises(FilterError) as info:
            apply_filter(people(), expr)
        shown = f"{info.value.message} {info.value.hint}"
        assert len(shown) < 1_000
        assert not any(expr[i : i + 201] in shown for i in range(len(expr) - 200))
        assert "\x1b" not in shown


# ---- the CLI, in real subprocesses ---------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KLAVIYO_API_KEY": DEMO_KEY}
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("args", [("run", "customers", "--dry-run"), ("run", "customers")])
def test_cli_runs_refuse_the_reported_payload(
    tmp_path: Path, isolated_dirs: Path, args: tuple[str, ...]
) -> None:
    marker = tmp_path / "pwned"
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.0)) as sandbox:
        source = write_customers(tmp_path / "c.csv", [{"email": "a@x.com"}])
        write_config(
            Path(os.environ["KLAVIYO_TUI_CONFIG"]),
            base_url=sandbox.base_url,
            list_id=create_list(sandbox.base_url),
            sources={"main": source},
            filters={"main": hostile(PAYLOADS[0], marker)},
            schedule="* * * * *",
        )
        due = cli("run", "--due")  # first: a failed run also counts as the minute's run
        done = cli(*args)
        assert import_jobs(sandbox.base_url) == []
    assert not marker.exists()
    for result in (done, due):
        assert result.returncode == ExitCode.INPUT, result.stderr
        assert "filter" in result.stderr.lower()
        assert "@names" in result.stderr
        assert "Traceback" not in result.stderr


# ---- the TUI: opening the export in the builder counts matching rows -----------------------


async def test_opening_the_export_in_the_builder_does_not_run_the_filter(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    add_sandbox_connection("http://127.0.0.1:9")  # never contacted here
    csv = sample_csv(tmp_path / "customers.csv")
    store = ConfigStore()
    store.put_segment(Segment("vip", str(csv), filter=hostile(PAYLOADS[0], marker)))
    store.put_export(Export("vip", "sandbox", "Y6nRLr", ("vip",), Mapping(email="email")))
    store.save()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        app.edit_export("vip")
        await wait_screen(pilot, ExportBuilderScreen)

        def count() -> str:
            found = app.screen.query("#count")
            return str(found.first(Static).render()) if found else ""

        await wait_until(pilot, lambda: "not valid" in count(), tries=1500)
        assert "@names" in count()
    assert not marker.exists()
