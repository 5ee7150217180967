"""Long lines on a terminal are cut at spaces to its width (a terminal would cut them mid-word);
piped or logged they stay one line per message."""

from __future__ import annotations

import os
import shutil
import sys

import click
import pytest

from klaviyo_tui.cli import output, prompts
from klaviyo_tui.events import Notice

NOTICE = (
    "waiting for Klaviyo: 1 job has shown no progress for 6s; after 12s without progress its "
    "rows end unconfirmed (--confirm-timeout sets how long; --resume asks about them again)"
)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """stderr (capsys's, set up first) is a 40-column terminal."""
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *_: os.terminal_size((40, 24)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def test_a_long_line_is_cut_at_spaces_and_its_words_kept_whole(terminal: None) -> None:
    lines = output.wrapped(NOTICE).split("\n")
    assert all(len(line) <= 40 for line in lines) and len(lines) > 4
    assert all(line.startswith("  ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == NOTICE
    assert any("--confirm-timeout" in line for line in lines)  # a flag is never cut
    long_path = "rejects: /tmp/" + "x" * 60 + ".csv"
    assert output.wrapped(long_path).split("\n")[1].strip() == long_path.split(" ")[1]
    assert output.wrapped("short\nlines") == "short\nlines"
    indented = output.wrapped("  " + NOTICE).split("\n")  # a summary's second line
    assert indented[0].startswith("  w") and all(x.startswith("    ") for x in indented[1:])


def test_progress_lines_and_errors_on_a_terminal_fit_it(
    terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    printer = output.ProgressPrinter("weekly")
    printer.event(Notice(NOTICE))
    output.say(NOTICE, err=True)
    output.say(NOTICE)  # stdout, piped: one line
    out, err = capsys.readouterr()
    assert out == NOTICE + "\n"
    shown = err.replace("\r\x1b[K", "\n").split("\n")
    assert all(len(line) <= 40 for line in shown if "confirmed" not in line)  # the bar aside
    assert err.count("--confirm-timeout") == 2


def test_piped_stderr_keeps_one_line_per_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *_: os.terminal_size((40, 24)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    output.ProgressPrinter("weekly").event(Notice(NOTICE))
    output.say(NOTICE, err=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].endswith(NOTICE) and lines[1] == NOTICE


def test_a_run_summary_on_a_terminal_fits_it_and_tables_are_left_alone(
    terminal: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    output.say(NOTICE, prose=True)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 40 and "--resume" in out
    row = "weekly-news-europe-2026    " + "    ".join(["1,000,000"] * 8)
    output.say(row)  # a table's row: a terminal wraps it, cutting it would break the columns
    assert capsys.readouterr().out == row + "\n"


def test_a_long_question_on_a_terminal_fits_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prompts go to stderr too: "Also map phone_number <- phone, ..., location.city <-" was cut
    by the terminal in the middle of a column name."""
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *_: os.terminal_size((40, 24)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    asked: list[str] = []

    def answer(text: str, **_: object) -> str:
        asked.append(text)
        return "y"

    monkeypatch.setattr(click, "prompt", answer)
    question = "Also map " + ", ".join(f"location.field{i} <- column_{i}" for i in range(6)) + "?"
    assert prompts.ask(question, flag="--map", default="Y/n") == "y"
    lines = asked[0].split("\n")
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert " ".join(x.strip() for x in lines) == question + " [Y/n]"


def test_text_from_data_is_made_safe_before_it_is_cut(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *_: os.terminal_size((40, 24)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    output.say("export x\x1b[31my[/]z: " + NOTICE, err=True)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "x\\x1b[31my[/]z" in err
    assert all(len(line) <= 40 for line in err.splitlines())
