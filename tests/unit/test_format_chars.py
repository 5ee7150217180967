"""Invisible characters from data (bidi overrides, zero-width characters, BOM, line and paragraph
separators) are shown as escapes like control characters, so they cannot break columns or make
text read as something else; filter errors show ESC as `\\x1b` as everywhere else."""

from __future__ import annotations

import pytest

from klaviyo_tui.cli.output import say
from klaviyo_tui.input.filters import FilterError, compile_filter
from klaviyo_tui.input.filters.nodes import clip
from klaviyo_tui.redaction import printable, safe_text
from klaviyo_tui.tui.screens.builder.fields import cell as preview_cell
from klaviyo_tui.tui.text import cell

HOSTILE = "abc\u202eevil\u200b\u2028x"


@pytest.mark.parametrize(
    ("char", "escape"),
    [
        ("\u202e", "\\u202e"),  # RIGHT-TO-LEFT OVERRIDE (Cf)
        ("\u2066", "\\u2066"),  # LEFT-TO-RIGHT ISOLATE (Cf)
        ("\u200b", "\\u200b"),  # ZERO WIDTH SPACE (Cf)
        ("\ufeff", "\\ufeff"),  # BOM (Cf)
        ("\u00ad", "\\xad"),  # SOFT HYPHEN (Cf)
        ("\U000e0041", "\\U000e0041"),  # TAG LATIN CAPITAL LETTER A (Cf)
        ("\u2028", "\\u2028"),  # LINE SEPARATOR (Zl)
        ("\u2029", "\\u2029"),  # PARAGRAPH SEPARATOR (Zp)
        ("\x1b", "\\x1b"),
        ("\x9b", "\\x9b"),
    ],
)
def test_invisible_characters_are_escaped(char: str, escape: str) -> None:
    assert printable(f"a{char}b") == f"a{escape}b"
    assert printable(f"a{char}b", keep_layout=True) == f"a{escape}b"


def test_visible_text_and_layout_are_kept() -> None:
    text = "Zoë 日本語 café naïve ü\u00a0x ✓ 🎉 عربى"
    assert printable(text) == text
    assert printable("a\tb\nc", keep_layout=True) == "a\tb\nc"
    assert printable("a\tb\nc") == "a\\tb\\nc"


def test_safe_text_and_the_display_helpers_escape_the_tester_name() -> None:
    shown = "abc\\u202eevil\\u200b\\u2028x"
    assert safe_text(HOSTILE) == shown
    assert safe_text(HOSTILE, keep_layout=True) == shown
    assert printable(shown) == shown  # escaping twice changes nothing
    assert cell(HOSTILE).plain == shown  # TUI DataTable cells
    assert preview_cell(HOSTILE, limit=60).plain == shown  # the column preview's cells


def test_cli_lines_escape_them(capsys: pytest.CaptureFixture[str]) -> None:
    say(f"the account has 1 list: {HOSTILE}", err=True)  # as `exports create` lists them
    assert capsys.readouterr().err == "the account has 1 list: abc\\u202eevil\\u200b\\u2028x\n"


def test_filter_errors_show_escapes_not_question_marks() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter("nope = 1", ["note \x1b[31mred", "a\u202eb"])
    message = caught.value.message
    assert "note \\x1b[31mred" in message and "a\\u202eb" in message
    assert "?" not in message and "\x1b" not in message and "\u202e" not in message


def test_filter_clip_keeps_escapes_whole_within_the_limit() -> None:
    assert clip("\x1b" * 20, 10) == "\\x1b\\x1b…"
    assert clip("ab\x1b", 6) == "ab\\x1b"
    assert clip("a" * 50, 40) == "a" * 39 + "…"
    assert all(len(clip(t, 12)) <= 12 for t in ("\U000e0041" * 5, "x\u202e" * 9, "y" * 13))


def test_joiners_are_kept_they_reorder_nothing() -> None:
    """Emoji sequences and Persian or Indic names need the zero-width (non-)joiner."""
    text = "👩\u200d💻 می\u200cخواهم"
    assert safe_text(text) == text


def test_a_paste_keeps_format_characters_and_the_field_shows_them_one_for_one() -> None:
    """A paste becomes data: only control characters are made visible in it. The field's
    highlighter shows a format character as U+FFFD (one for one: the cursor lines up)."""
    from rich.text import Text

    from klaviyo_tui.tui.app_base import pasted_text
    from klaviyo_tui.tui.screens.builder.fields import CONTROL_PICTURES

    pasted = pasted_text(f"{HOSTILE}\x1b[2J")
    assert pasted == f"{HOSTILE}\\x1b[2J"
    drawn = Text(pasted)
    CONTROL_PICTURES.highlight(drawn)
    assert drawn.plain == "abc\ufffdevil\ufffd\ufffdx\\x1b[2J"
    assert len(drawn.plain) == len(pasted)
