"""Command-line text must be UTF-8: one check on every parameter of every command.

Python decodes argv and the environment with surrogateescape, so bytes that are not UTF-8 (a
Latin-1 file name, `$'\\xff'`) arrive as lone surrogates (U+DC80-U+DCFF). Such a str cannot be
written to the config, sent to Klaviyo or compared by pyarrow, and would fail far from where it
was typed; here it is refused while the arguments are parsed, as a usage error naming the option.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from klaviyo_tui.redaction import safe_text

_SURROGATE = re.compile("[\ud800-\udfff]")
SHOWN_LIMIT = 80
"""At most this many characters of the refused value in the message (a query can be long)."""
PATH_ENV_VARS = ("KLAVIYO_TUI_DATA",)
"""Paths read from the environment outside click's parameters (KLAVIYO_TUI_CONFIG is --config)."""

Callback = Callable[[click.Context, click.Parameter, Any], Any] | None


def not_utf8(value: object) -> str | None:
    """The first text in `value` (a str, a path, or a tuple of them) that was not UTF-8."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return value if _SURROGATE.search(value) else None
    if isinstance(value, tuple | list):
        for item in value:
            found = not_utf8(item)
            if found is not None:
                return found
    return None


def shown(text: str) -> str:
    """`text` for a message: each byte that was not UTF-8 as `\\xNN`, controls visible, clipped."""
    clipped = text if len(text) <= SHOWN_LIMIT else text[: SHOWN_LIMIT - 1] + "…"
    escaped = _SURROGATE.sub(_escape, clipped)
    return safe_text(escaped)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _is_file_name(param: click.Parameter) -> bool:
    return isinstance(param.type, click.Path) or param.metavar == "PATH"


def problem(param: click.Parameter, text: str, *, from_env: str | None = None) -> str:
    """What is wrong with `text` and what to do, for a parameter (or an environment variable)."""
    origin = f" (from the environment variable {from_env})" if from_env else ""
    said = f"'{shown(text)}'{origin} is not valid UTF-8 text"
    if _is_file_name(param):
        return f"{said}; rename the file so its name is UTF-8, or give its path in UTF-8."
    return f"{said}; type it again in UTF-8 (check the terminal's or the script's encoding)."


class _Utf8Check:
    """A parameter callback: refuse text that was not UTF-8, then run the parameter's own one."""

    def __init__(self, inner: Callback) -> None:
        self.inner = inner

    def __call__(self, ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        text = not_utf8(value)
        if text is not None:
            from_env = None
            if param.name and ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
                from_env = param.envvar if isinstance(param.envvar, str) else "its variable"
            raise click.BadParameter(problem(param, text, from_env=from_env), ctx, param)
        return value if self.inner is None else self.inner(ctx, param, value)


def require_utf8(command: click.Command) -> None:
    """Give every parameter of `command` and of its subcommands the check (once each)."""
    for param in command.params:
        if not isinstance(param.callback, _Utf8Check):
            param.callback = _Utf8Check(param.callback)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            require_utf8(sub)


def check_environment(ctx: click.Context | None = None) -> None:
    """Refuse a path variable that is not UTF-8 (it ends up in messages and the TUI as text)."""
    for name in PATH_ENV_VARS:
        value = os.environ.get(name)
        if value and not_utf8(value) is not None:
            raise click.UsageError(
                f"The environment variable {name} ('{shown(value)}') is not valid UTF-8 text; "
                "rename the folder so its name is UTF-8, or set the variable to a UTF-8 path.",
                ctx,
            )
