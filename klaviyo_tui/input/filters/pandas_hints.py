"""The SQL to write instead of a pandas-style filter, for the error message (never evaluated).

Filters used to be pandas `query` strings, so configs in the wild hold `a == 1 & b > 2`,
`x.str.contains('y')` or `x in ['a', 'b']`. This rewrites such token streams into the SQL form;
the caller shows the rewrite only if it passes the parser itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot.tokenizer_core import Token, TokenType

_WORDS = {
    TokenType.AMP: "AND",
    TokenType.PIPE: "OR",
    TokenType.TILDE: "NOT",
    TokenType.AND: "AND",
    TokenType.OR: "OR",
    TokenType.NOT: "NOT",
    TokenType.IN: "IN",
    TokenType.TRUE: "TRUE",
    TokenType.FALSE: "FALSE",
    TokenType.L_BRACKET: "(",
    TokenType.R_BRACKET: ")",
    TokenType.EQ: "=",
}
_LIKE = {"contains": "%{}%", "startswith": "{}%", "endswith": "%{}"}
_NULL = {"isna": "IS NULL", "isnull": "IS NULL", "notna": "IS NOT NULL", "notnull": "IS NOT NULL"}


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Rewriter:
    def __init__(self, text: str, toks: list[Token], columns: Sequence[str]) -> None:
        self.text, self.toks, self.columns = text, toks, columns
        self.out: list[str] = []
        self.in_isin = False  # inside .isin([...]): its ']' closes the list and the call

    def kind(self, i: int) -> TokenType | None:
        return self.toks[i].token_type if i < len(self.toks) else None

    def word(self, i: int) -> str:
        return self.toks[i].text.lower() if i < len(self.toks) else ""

    def render(self, token: Token) -> str:
        kind = token.token_type
        if kind == TokenType.STRING:
            return sql_text(token.text)
        if kind == TokenType.IDENTIFIER:
            quote = self.text[token.start]
            if quote == '"' and token.text not in self.columns:
                return sql_text(token.text)  # pandas "US" meant the text
            return '"' + token.text.replace('"', '""') + '"'
        return _WORDS.get(kind, token.text)

    def method(self, i: int) -> int | None:
        """Rewrite `col.str.contains('x')`, `col.isin([...])`, `col.isna()` starting at i."""
        column = self.render(self.toks[i])
        j = i + 2
        if self.word(j) == "str" and self.kind(j + 1) == TokenType.DOT:
            j += 2
            name = self.word(j)
            if (
                name in _LIKE
                and self.kind(j + 1) == TokenType.L_PAREN
                and self.kind(j + 2) == TokenType.STRING
                and self.kind(j + 3) == TokenType.R_PAREN
            ):
                pattern = _LIKE[name].format(_like_escape(self.toks[j + 2].text))
                self.out.append(f"{column} LIKE {sql_text(pattern)}")
                return j + 4
            return None
        name = self.word(j)
        if name in _NULL and self.kind(j + 1) == TokenType.L_PAREN:
            if self.kind(j + 2) == TokenType.R_PAREN:
                self.out.append(f"{column} {_NULL[name]}")
                return j + 3
            return None
        if (
            name == "isin"
            and self.kind(j + 1) == TokenType.L_PAREN
            and self.kind(j + 2) == TokenType.L_BRACKET
        ):
            self.out.append(f"{column} IN (")
            self.in_isin = True
            return j + 3
        return None

    def run(self) -> str | None:
        i = 0
        while i < len(self.toks):
            token = self.toks[i]
            kind = token.token_type
            if kind == TokenType.PARAMETER:
                return None  # a Python variable: only the user knows its value
            if kind in (TokenType.VAR, TokenType.IDENTIFIER) and self.kind(i + 1) == TokenType.DOT:
                after = self.method(i)
                if after is None:
                    return None
                i = after
                continue
            if kind == TokenType.R_BRACKET and self.in_isin:
                self.out.append(")")
                self.in_isin = False
                i += 2 if self.kind(i + 1) == TokenType.R_PAREN else 1
                continue
            self.out.append(self.render(token))
            i += 1
        text = " ".join(self.out)
        for spaced, tight in (("( ", "("), (" )", ")"), (" ,", ",")):
            text = text.replace(spaced, tight)
        return text


def suggest(text: str, toks: list[Token], columns: Sequence[str]) -> str | None:
    """The SQL form of a pandas-style filter, or None when it cannot be worked out."""
    return _Rewriter(text, toks, columns).run() if toks else None
