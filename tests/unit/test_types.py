"""Types and lint are part of the suite: `mypy` (strict, over the package), `mypy tests` (the
tests' override in pyproject), `mypy scripts bench` (strict, the helper scripts and benches the
suite never runs) and `ruff check` (ASYNC rules on) each fail a test with their output; and
modules stay small enough to read (at most 400 lines; the App module under 150).

mypy keeps its cache in pytest's cache folder, so only the first run in a checkout is cold: about
15 s for the package, the tests and the scripts together on the 2-core machine, under a second
warm after that.
ruff takes well under a second. Two more tests show the gates are on: the project's own settings
reject an unannotated function, an import of one of our modules that does not exist (never a silent
Any) and a blocking call in a coroutine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "pyproject.toml"
MAX_LINES = 400  # a module past this is probably two (decisions.md)
MAX_APP_LINES = 150  # the App routes; screens, flows and the run registry live elsewhere


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m TOOL ...` from the repository root, with this interpreter's packages."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=240
    )


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def mypy_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kept between runs in pytest's cache folder (a fresh tmp folder without the cache plugin)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("mypy-cache")
    folder: Path = cache.mkdir("mypy")
    return folder


def test_the_package_passes_mypy_strict(mypy_cache: Path) -> None:
    result = run("mypy", "--cache-dir", str(mypy_cache))  # `packages` and `strict` from pyproject
    assert result.returncode == 0, report(result)
    assert "klaviyo_tui" not in result.stdout  # no notes or errors about our modules either


def test_the_tests_pass_mypy(mypy_cache: Path) -> None:
    result = run("mypy", "--cache-dir", str(mypy_cache), "tests")
    assert result.returncode == 0, report(result)


def test_the_scripts_and_benches_pass_mypy(mypy_cache: Path) -> None:
    """Nothing else runs them, so a module moved from under them (scripts/screenshots.py once
    imported names that were gone) fails here. Each file is a top-level module; mypy puts bench/ on
    the search path, so the benches' `from export_bench import ...` is checked too."""
    result = run("mypy", "--cache-dir", str(mypy_cache), "scripts", "bench")
    assert result.returncode == 0, report(result)


def test_ruff_check_passes() -> None:
    result = run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, report(result)


def test_the_settings_reject_untyped_code_and_blocking_calls(tmp_path: Path) -> None:
    """The gates are on: the project's settings, applied to a small module, catch all three."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time\n\nfrom klaviyo_tui.moved_away import gone  # noqa: F401\n\n\n"
        "def untyped(x):\n    return x\n\n\n"
        "async def blocks() -> None:\n    time.sleep(1)\n"
    )
    cache = str(tmp_path / "mypy-cache")
    typed = run("mypy", "--config-file", str(CONFIG), "--cache-dir", cache, str(sample))
    assert typed.returncode == 1, report(typed)
    assert "[no-untyped-def]" in typed.stdout, report(typed)
    assert '"klaviyo_tui.moved_away"' in typed.stdout, report(typed)
    linted = run("ruff", "check", "--no-cache", "--config", str(CONFIG), str(sample))
    assert linted.returncode == 1, report(linted)
    assert "ASYNC251" in linted.stdout, report(linted)


def test_modules_stay_readable() -> None:
    package = REPO / "klaviyo_tui"
    sizes = {
        p.relative_to(REPO).as_posix(): len(p.read_bytes().splitlines())
        for p in package.rglob("*.py")
    }
    assert len(sizes) > 100  # the package was found
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these by responsibility (at most {MAX_LINES} lines): {too_long}"
    assert sizes["klaviyo_tui/tui/app.py"] < MAX_APP_LINES
