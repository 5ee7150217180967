"""Gate 1: the filter's tokens, checked before parsing (clear messages with positions).

sqlglot's tokenizer knows SQL quoting, so a `;` or `@` inside 'text' is text, and outside it is
refused here with the character position for the TUI to point at.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError
from sqlglot.tokenizer_core import Token, TokenType

from klaviyo_tui.input.filters.nodes import quoted


class FilterSQL(Dialect):
    """ANSI-like SQL where both "double quoted" and `backticked` names are identifiers."""

    class Tokenizer(tokens.Tokenizer):
        IDENTIFIERS = ['"', "`"]


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    position: int | None
    pandas: bool = False  # pandas syntax: the message should show the SQL form


_PANDAS = "the filter is SQL, not pandas"
_REFUSED: dict[TokenType, str] = {
    TokenType.PARAMETER: "@names (Python variables) are not allowed: write the value itself",
    TokenType.PLACEHOLDER: "placeholders are not allowed: write the value itself",
    TokenType.AMP: f"'&' is not an operator here ({_PANDAS}): use AND",
    TokenType.PIPE: f"'|' is not an operator here ({_PANDAS}): use OR",
    TokenType.DPIPE: "'||' is not an operator here: use OR",
    TokenType.TILDE: f"'~' is not an operator here ({_PANDAS}): use NOT",
    TokenType.CARET: "'^' is not an operator here",
    TokenType.SEMICOLON: "a filter is one condition: ';' is not allowed",
    TokenType.L_BRACKET: "lists are written in parentheses: x IN ('a', 'b')",
    TokenType.R_BRACKET: "lists are written in parentheses: x IN ('a', 'b')",
    TokenType.L_BRACE: "'{' is not allowed",
    TokenType.R_BRACE: "'}' is not allowed",
    TokenType.DOT: 'attribute access (a.b) is not allowed; quote a name with a dot: "a.b"',
    TokenType.DCOLON: "casts ('::') are not allowed: a number literal compares numerically",
    TokenType.COLON: "':' is not allowed",
    TokenType.HASH: "'#' is not allowed",
    TokenType.SELECT: "subqueries are not allowed",
    TokenType.WITH: "subqueries are not allowed",
}
_PANDAS_TOKENS = {
    TokenType.PARAMETER,
    TokenType.AMP,
    TokenType.PIPE,
    TokenType.TILDE,
    TokenType.L_BRACKET,
}
# Tokens after which '(' opens a group or a list; after anything else it is a call.
_BEFORE_PAREN = {
    TokenType.IN,
    TokenType.NOT,
    TokenType.AND,
    TokenType.OR,
    TokenType.L_PAREN,
    TokenType.COMMA,
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.LT,
    TokenType.LTE,
    TokenType.GT,
    TokenType.GTE,
    TokenType.BETWEEN,
    TokenType.LIKE,
    TokenType.ILIKE,
    TokenType.IS,
    TokenType.DASH,
}


_NAMES = {TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER}


def token_problem(text: str, toks: list[Token]) -> Problem | None:
    """The first token the filter language refuses, or None."""
    if any(t.comments for t in toks):
        spans = [(t.start, t.end) for t in toks]
        return Problem("Comments ('--', '/* */') are not allowed", _comment_at(text, spans))
    previous: Token | None = None
    for i, token in enumerate(toks):
        kind = token.token_type
        if kind in _REFUSED:
            message = _REFUSED[kind]
            if kind == TokenType.DOT and _ends_in_call(toks, i):
                message = "method calls (.name(...)) are not allowed"
            pandas = kind in _PANDAS_TOKENS or (kind == TokenType.DOT and previous is not None)
            return Problem(f"At {_near(text, token)}: {message}", token.start, pandas)
        if kind == TokenType.UNKNOWN:
            return Problem(f"Unexpected character {quoted(token.text, 5)}", token.start)
        if kind == TokenType.L_PAREN and previous and previous.token_type not in _BEFORE_PAREN:
            message = f"At {_near(text, previous)}: function calls are not allowed in a filter"
            return Problem(message, previous.start)
        previous = token
    return None


def keyword_column(text: str, toks: list[Token], columns: list[str]) -> Token | None:
    """An unquoted SQL keyword that is also a column's name (`when`, `from`): a likely cause."""
    names = {c.lower() for c in columns}
    for token in toks:
        if token.token_type in _NAMES or text[token.start] in "\"`'":
            continue
        if token.text.lower() in names:
            return token
    return None


def syntax_problem(text: str, exc: ParseError) -> Problem:
    """sqlglot's parse error as a message and the 0-based position of the token at fault."""
    info = exc.errors[0] if exc.errors else {}
    highlight = str(info.get("highlight") or "")
    position = _offset(text, info.get("line"), info.get("col"), len(highlight))
    if position is None or not str(info.get("end_context") or "").strip():
        end = len(text.rstrip())
        return Problem("The filter ends too early (a value or ')' is missing)", end)
    return Problem(f"The filter cannot be read near {quoted(highlight, 30)}", position)


def unclosed_quote(text: str) -> int | None:
    """Where the first never-closed quote starts (quotes are escaped by doubling)."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch not in "'\"`":
            i += 1
            continue
        end = i + 1
        while True:
            end = text.find(ch, end)
            if end < 0:
                return i
            if text[end + 1 : end + 2] != ch:
                break
            end += 2
        i = end + 1
    return None


def _ends_in_call(toks: list[Token], dot: int) -> bool:
    """Whether the chain `.a.b.c` starting at toks[dot] ends in '(' (a method call)."""
    j = dot + 1
    while j + 2 < len(toks) and toks[j + 1].token_type == TokenType.DOT:
        j += 2
    return j + 1 < len(toks) and toks[j + 1].token_type == TokenType.L_PAREN


def _near(text: str, token: Token) -> str:
    return quoted(text[token.start : token.end + 1], 30)


def _offset(text: str, line: object, col: object, width: int) -> int | None:
    """0-based offset of a parse error's highlighted token (sqlglot gives its 1-based end)."""
    if not isinstance(line, int) or not isinstance(col, int):
        return None
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    end = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
    return max(0, min(len(text), end - max(width, 1) + 1))


def _comment_at(text: str, spans: list[tuple[int, int]]) -> int | None:
    """The first '--' or '/*' outside a token (the tokenizer does not keep comment positions)."""
    found = []
    for marker in ("--", "/*"):
        at = text.find(marker)
        while at >= 0 and any(a <= at <= b for a, b in spans):
            at = text.find(marker, at + 1)
        if at >= 0:
            found.append(at)
    return min(found, default=None)
