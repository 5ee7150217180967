"""Questions on a terminal or piped standard input, and what happens when no answer comes (cron):
a message naming the flag that answers instead, never a bare "Aborted!"."""

from __future__ import annotations

import sys

import click

from klaviyo_tui.cli.output import wrapped
from klaviyo_tui.errors import AppError
from klaviyo_tui.redaction import safe_text


def has_terminal() -> bool:
    return sys.stdin.isatty()


def _unanswered(question: str, flag: str) -> AppError:
    return AppError(
        f"{question.rstrip('?')}: no answer (standard input is not a terminal, or it ended)",
        hint=f"Run the command again with {flag}.",
    )


def confirm(question: str, *, flag: str = "--yes", default: bool = False) -> bool:
    """Ask a yes/no question; without an answer, say which flag answers it."""
    try:
        return click.confirm(_fitted(question), default=default, err=True)
    except click.Abort:
        if has_terminal():
            raise  # Ctrl-C at the prompt
        raise _unanswered(question, f"{flag} to answer yes") from None


def _fitted(question: str) -> str:
    """Cut at spaces to a terminal's width (prompts go to stderr), as other messages are."""
    return wrapped(question) if sys.stderr.isatty() else question


def _shown(question: str, default: str | None, choices: list[str] | None = None) -> str:
    """The question as printed: defaults and choices often come from data, so made safe."""
    if choices and len(choices) <= 12:
        question += f" ({', '.join(choices)})"
    if default:
        question += f" [{default}]"
    return _fitted(safe_text(question))


def ask(
    question: str,
    *,
    flag: str,
    default: str | None = None,
    hide: bool = False,
    strip: bool = True,
) -> str:
    """Ask for a value; without an answer, say which option or variable gives it. `strip`:
    trim the answer (not when it names columns, whose spaces may be part of the name)."""
    try:
        value: str = click.prompt(
            _shown(question, default),
            default=default,
            hide_input=hide,
            show_default=False,
            err=True,
        )
    except click.Abort:
        if has_terminal():
            raise
        raise _unanswered(question, flag) from None
    return value.strip() if strip else value


def choose(
    question: str,
    choices: list[str],
    *,
    flag: str,
    default: str | None = None,
    listed: bool = True,
) -> str:
    """Ask for one of `choices` (listed when few, unless `listed` is False because they were just
    printed); anything else is asked again."""
    try:
        value: str = click.prompt(
            _shown(question, default, choices if listed else None),
            default=default,
            type=click.Choice(choices),
            show_choices=False,
            show_default=False,
            err=True,
        )
    except click.Abort:
        if has_terminal():
            raise
        raise _unanswered(question, flag) from None
    return value


def nothing_changed(message: str = "nothing changed") -> None:
    """A declined confirmation is an answer, not an error: exit 0."""
    click.echo(message, err=True)
    sys.exit(0)
