"""SQL WHERE text -> checked nodes (nodes.py). Anything outside a short whitelist is refused.

Two gates, both needed for a clear message and neither trusted alone:
1. The token stream (lexing.py): refuses `@`, `&`, `|`, `~`, `;`, comments, attribute access,
   brackets and calls, with the character position.
2. The syntax tree (sqlglot's parser, here): only the node types whitelist.py knows, converted
   below, become filter nodes; every other node type (functions, subqueries, arithmetic, casts
   of columns, ...) is refused, with a message saying what it is.
sqlglot only parses; nothing here or in the evaluator can call, import or read anything.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokenizer_core import Token

from klaviyo_tui.input.filters import lexing, pandas_hints, whitelist
from klaviyo_tui.input.filters.lexing import FilterSQL
from klaviyo_tui.input.filters.nodes import (
    EXAMPLE,
    And,
    Between,
    Compare,
    CompareOp,
    Const,
    FilterError,
    InList,
    IsBool,
    IsNull,
    Like,
    Node,
    Not,
    Or,
    Truth,
    Value,
    clip,
    columns_text,
    number_literal,
    quoted,
    to_timestamp,
)
from klaviyo_tui.input.filters.whitelist import OPS, position_of, shown

MAX_LENGTH = 100_000
MAX_DEPTH = 200
_TOO_DEEP = f"The filter is nested too deeply (at most {MAX_DEPTH} levels)"


_FLIP: dict[CompareOp, CompareOp] = {
    "=": "=",
    "!=": "!=",
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
}
_DATE_TYPES = {exp.DataType.Type.DATE}
_TIMESTAMP_TYPES = {exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATETIME}


def parse(text: str, columns: Sequence[str]) -> Node:
    """Checked nodes for `text`, or FilterError naming the fault (and its position when known)."""
    return _Parser(text, list(columns)).run()


class _Parser:
    def __init__(self, text: str, columns: list[str], *, hints: bool = True) -> None:
        self.text = text
        self.columns = columns
        self.hints = hints
        self.tokens: list[Token] = []

    # ---- errors --------------------------------------------------------------------------------

    def fail(
        self, message: str, position: int | None = None, *, pandas: bool = False
    ) -> FilterError:
        if pandas and self.hints:
            message += f"; use {clip(self.suggestion() or EXAMPLE, 150)} instead"
        return FilterError(f"{message}. {columns_text(self.columns)}", position=position)

    def suggestion(self) -> str | None:
        """The SQL form of a pandas-style filter, if it is itself a valid filter."""
        candidate = pandas_hints.suggest(self.text, self.tokens, self.columns)
        if candidate is None:
            return None
        try:
            _Parser(candidate, self.columns, hints=False).run()
        except FilterError:
            return None
        return candidate

    # ---- gate 1: tokens ------------------------------------------------------------------------

    def run(self) -> Node:
        if len(self.text) > MAX_LENGTH:
            length = len(self.text)
            raise self.fail(f"The filter is {length:,} characters long (at most {MAX_LENGTH:,})")
        try:
            self.tokens = FilterSQL().tokenize(self.text)
        except SqlglotError:
            position = lexing.unclosed_quote(self.text)
            raise self.fail("The filter has a quote that is never closed", position) from None
        problem = lexing.token_problem(self.text, self.tokens)
        if problem:
            raise self.fail(problem.message, problem.position, pandas=problem.pandas)
        try:
            return self.tree()
        except FilterError:
            keyword = lexing.keyword_column(self.text, self.tokens, self.columns)
            if keyword is None:
                raise
            name = self.text[keyword.start : keyword.end + 1]
            raise self.fail(
                f"{quoted(name)} is a SQL word; to mean the column, write it in double quotes: "
                f'"{clip(name)}"',
                keyword.start,
            ) from None

    def tree(self) -> Node:
        try:
            tree = sqlglot.parse_one(self.text, into=exp.Condition, dialect=FilterSQL)
        except ParseError as exc:
            problem = lexing.syntax_problem(self.text, exc)
            raise self.fail(problem.message, problem.position) from None
        except RecursionError:
            raise self.fail(_TOO_DEEP) from None
        except SqlglotError:
            raise self.fail("The filter cannot be read as SQL") from None
        return self.condition(tree, 0)

    # ---- gate 2: the syntax tree ---------------------------------------------------------------

    def checked(self, node: exp.Expr) -> exp.Expr:
        """`node` without its parentheses, if the whitelist knows it; else a refusal."""
        node, known = whitelist.unwrap(node)
        if not known:
            raise self.refuse(node)
        return node

    def condition(self, node: exp.Expr, depth: int) -> Node:
        """A node that must give true/false for each row."""
        if depth > MAX_DEPTH:
            raise self.fail(_TOO_DEEP)
        node = self.checked(node)
        negate = bool(node.args.get("negate"))
        if negate and isinstance(node, exp.Like | exp.ILike | exp.Is):
            node = node.copy()
            node.set("negate", None)
            return Not(self.condition(node, depth + 1))
        if isinstance(node, exp.And | exp.Or):
            left = self.condition(node.this, depth + 1)
            right = self.condition(node.expression, depth + 1)
            return And(left, right) if isinstance(node, exp.And) else Or(left, right)
        if isinstance(node, exp.Not):
            return Not(self.condition(node.this, depth + 1))
        if isinstance(node, exp.Boolean):
            return Const(bool(node.this))
        if isinstance(node, exp.Column) and not node.table:
            name = self.column(node, allow_text=False)
            assert name is not None
            return Truth(name)
        if type(node) in OPS:
            return self.compare(node, OPS[type(node)])
        if isinstance(node, exp.In):
            return self.in_list(node)
        if isinstance(node, exp.Between):
            return self.between(node)
        if isinstance(node, exp.Like | exp.ILike):
            column = self.need_column(node.this, node)
            pattern = self.value(node.expression)
            if pattern.kind != "text":
                raise self.fail(
                    f"LIKE needs a text pattern in single quotes, e.g. {clip(column)} LIKE 'a%'"
                )
            return Like(column, str(pattern.value), isinstance(node, exp.ILike))
        if isinstance(node, exp.Is):
            column = self.need_column(node.this, node)
            if isinstance(node.expression, exp.Null):
                return IsNull(column)
            if isinstance(node.expression, exp.Boolean):
                return IsBool(column, bool(node.expression.this))
            raise self.fail("IS is followed by NULL, NOT NULL, TRUE or FALSE", position_of(node))
        if isinstance(node, exp.Literal | exp.Neg | exp.Cast | exp.Null):
            raise self.fail(
                f"The filter is not a condition: {shown(node, 40, quote=False)} is a value; "
                f"compare a column with it, e.g. {EXAMPLE}",
                position_of(node),
            )
        raise self.refuse(node)

    def compare(self, node: exp.Expr, op: CompareOp) -> Compare:
        left, right = self.operand(node.this), self.operand(node.expression)
        if isinstance(left, Value) and isinstance(right, str):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, str) and isinstance(right, Value):
            return Compare(left, op, self.not_empty(left, right, op))
        if isinstance(left, str) and isinstance(right, str):
            raise self.fail(
                f"{shown(node, 60)} compares two columns; compare a column with a value "
                "(text goes in single quotes, e.g. country = 'US')",
                position_of(node),
            )
        raise self.fail(
            f"{shown(node, 60)} compares two values; one side must be a column",
            position_of(node),
        )

    def in_list(self, node: exp.In) -> InList:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise self.refuse(node.args.get("query") or node)
        column = self.need_column(node.this, node)
        values = tuple(self.not_empty(column, self.value(v), "IN") for v in node.expressions)
        if not values:
            typed = node.this.this if isinstance(node.this, exp.Column) else None
            name = clip(column)  # as the user wrote it: quoted if they quoted it
            if isinstance(typed, exp.Identifier) and typed.args.get("quoted"):
                name = '"' + name.replace('"', '""') + '"'
            raise self.fail(f"IN needs at least one value, e.g. {name} IN ('US', 'CA')")
        return InList(column, values)

    def between(self, node: exp.Between) -> Between:
        column = self.need_column(node.this, node)
        low, high = self.value(node.args["low"]), self.value(node.args["high"])
        if low.kind != high.kind or low.kind == "bool":
            raise self.fail(
                f"BETWEEN needs two numbers, two texts or two dates, e.g. {column} BETWEEN 1 AND 5"
            )
        return Between(column, low, high)

    def not_empty(self, column: str, value: Value, op: str) -> Value:
        if value.kind == "text" and value.value == "":
            test = "IS NOT NULL" if op in ("!=",) else "IS NULL"
            raise self.fail(
                f"Empty text ('') never matches: empty cells count as NULL; "
                f"write {clip(column, 40)} {test}"
            )
        return value

    # ---- operands ------------------------------------------------------------------------------

    def operand(self, node: exp.Expr) -> str | Value:
        """A column name, or a literal value."""
        node = self.checked(node)
        if isinstance(node, exp.Column) and not node.table:
            name = self.column(node, allow_text=True)
            if name is not None:
                return name
            return Value("text", node.name)
        return self.value(node)

    def need_column(self, node: exp.Expr, parent: exp.Expr) -> str:
        found = self.operand(node)
        if isinstance(found, str):
            return found
        raise self.fail(
            f"{shown(parent, 60)} must start with a column, e.g. country IN ('US', 'CA')",
            position_of(parent),
        )

    def column(self, node: exp.Column, *, allow_text: bool) -> str | None:
        """The column a name refers to; None for a double-quoted name that is no column (text)."""
        ident = self.checked(node.this)
        if not isinstance(ident, exp.Identifier):
            raise self.refuse(node)
        name = str(ident.this)
        if name in self.columns:
            return name
        start = ident.meta.get("start")
        quote = self.text[start] if isinstance(start, int) and start < len(self.text) else ""
        if not ident.quoted:
            folded = [c for c in self.columns if c.lower() == name.lower()]
            if len(folded) == 1:
                return folded[0]
        elif quote == '"' and allow_text:
            return None  # pandas habit: "US" meant the text US
        close = difflib.get_close_matches(name, self.columns, n=1)
        maybe = f" (did you mean {quoted(close[0])}?)" if close else ""
        text = f"; text goes in single quotes: {quoted(name)}" if quote != "`" else ""
        raise self.fail(f"Unknown column {quoted(name)}{maybe}{text}", start)

    def value(self, node: exp.Expr) -> Value:
        """A literal: number, 'text', TRUE/FALSE, DATE '…', TIMESTAMP '…' (or a refusal)."""
        node = self.checked(node)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return Value("text", str(node.this))
            return Value("number", number_literal(str(node.this)))
        if isinstance(node, exp.Neg):
            inner = self.checked(node.this)
            if isinstance(inner, exp.Literal) and inner.is_number:
                return Value("number", -number_literal(str(inner.this)))
            raise self.refuse(node)
        if isinstance(node, exp.Boolean):
            return Value("bool", bool(node.this))
        if isinstance(node, exp.Null):
            raise self.fail("NULL never equals anything: write x IS NULL or x IS NOT NULL")
        if isinstance(node, exp.Column) and not node.table:
            name = self.column(node, allow_text=True)
            raise self.fail(
                f"Column {quoted(name or node.name)} is used where a value is expected",
                position_of(node),
            )
        literal = self.checked(node.this) if isinstance(node, exp.Cast) else None
        if isinstance(node, exp.Cast) and isinstance(literal, exp.Literal) and literal.is_string:
            kind = self.checked(node.to).this
            if kind in _DATE_TYPES:
                return Value("date", self.date(str(node.this.this), node))
            if kind in _TIMESTAMP_TYPES:
                return Value("timestamp", self.timestamp(str(node.this.this), node))
        raise self.refuse(node)

    def date(self, text: str, node: exp.Expr) -> dt.date:
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            raise self.fail(
                f"{quoted(text)} is not a date: write DATE 'YYYY-MM-DD' "
                "(TIMESTAMP 'YYYY-MM-DD HH:MM' for a time of day)",
                position_of(node),
            ) from None

    def timestamp(self, text: str, node: exp.Expr) -> dt.datetime:
        value = to_timestamp(text)
        if value is None:
            raise self.fail(
                f"{quoted(text)} is not a timestamp: write TIMESTAMP 'YYYY-MM-DD HH:MM:SS'",
                position_of(node),
            )
        return value

    def refuse(self, node: exp.Expr) -> FilterError:
        """The error for a syntax-tree node outside the whitelist."""
        return self.fail(whitelist.refusal(node), position_of(node))
