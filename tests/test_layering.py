"""The core never imports textual: the headless CLI path runs without it."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "klaviyo_tui.model",
    "klaviyo_tui.paths",
    "klaviyo_tui.config",
    "klaviyo_tui.config_store",
    "klaviyo_tui.urls",
    "klaviyo_tui.pipeline",
    "klaviyo_tui.segments",
    "klaviyo_tui.locking",
    "klaviyo_tui.schedule",
    "klaviyo_tui.rejects",
    "klaviyo_tui.reading",
    "klaviyo_tui.outcomes",
    "klaviyo_tui.jobs",
    "klaviyo_tui.consent",
    "klaviyo_tui.sample_data",
    "klaviyo_tui.secrets",
    "klaviyo_tui.klaviyo",
    "klaviyo_tui.sandbox",
    "klaviyo_tui.sources",
    "klaviyo_tui.mapping",
    "klaviyo_tui.batching",
    "klaviyo_tui.engine",
    "klaviyo_tui.history",
    "klaviyo_tui.cli",
]


def test_core_and_headless_cli_never_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_does_not_load_textual() -> None:
    code = (
        "import sys\n"
        "from klaviyo_tui.cli import main\n"
        "try:\n"
        "    main(['run', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('textual' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().endswith("False")
