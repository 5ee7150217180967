"""Gate 2's whitelist: the sqlglot node types, and the arguments of each, that a filter may
contain, and what to say about any other node (parse.py turns the known ones into filter nodes).

The whitelist is by exact type and argument name: a sqlglot upgrade that adds a node type or an
argument (say `negate` on LIKE) is refused until it is handled.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError

from klaviyo_tui.input.filters.lexing import FilterSQL
from klaviyo_tui.input.filters.nodes import CompareOp, clip, quoted

#: The comparisons, by node type (parse.py turns them into `Compare` nodes).
OPS: dict[type[exp.Expr], CompareOp] = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_BINARY = frozenset({"this", "expression"})
ARGS: dict[type[exp.Expr], frozenset[str]] = {
    exp.And: _BINARY,
    exp.Or: _BINARY,
    exp.Not: frozenset({"this"}),
    exp.Paren: frozenset({"this"}),
    **{op: _BINARY for op in OPS},
    exp.In: frozenset({"this", "expressions"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Like: frozenset({"this", "expression", "negate"}),
    exp.ILike: frozenset({"this", "expression", "negate"}),
    exp.Is: frozenset({"this", "expression", "negate"}),
    exp.Column: frozenset({"this"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Boolean: frozenset({"this"}),
    exp.Neg: frozenset({"this"}),
    exp.Null: frozenset(),
    exp.Cast: frozenset({"this", "to"}),
    exp.DataType: frozenset({"this", "nested"}),
}
"""Every sqlglot node type the filter language accepts, with the arguments it may carry."""
_UNSET: tuple[object, ...] = (None, False, "", [])


def unwrap(node: exp.Expr) -> tuple[exp.Expr, bool]:
    """(`node` without its parentheses, True) when its type and every argument it carries are
    known; (the first unknown node, False) otherwise."""
    while True:
        allowed = ARGS.get(type(node))
        if allowed is None:
            return node, False
        extra = [k for k, v in node.args.items() if k not in allowed and v not in _UNSET]
        if extra:
            return node, False
        if not isinstance(node, exp.Paren):
            return node, True
        node = node.this


def refusal(node: exp.Expr) -> str:
    """What a node outside the whitelist is, as the message says it."""
    if isinstance(node, exp.Subquery | exp.Query | exp.Exists):
        what = "subqueries are not allowed"
    elif isinstance(node, exp.Cast):
        what = "CAST is not supported: a number literal compares numerically by itself"
    elif isinstance(node, exp.Func):
        what = "function calls are not allowed"
    elif isinstance(node, exp.Parameter | exp.Placeholder):
        what = "parameters are not allowed: write the value itself"
    elif isinstance(node, exp.Dot | exp.Column):
        what = 'attribute access is not allowed; quote a name with a dot: "a.b"'
    elif isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod | exp.Neg):
        what = "arithmetic is not supported"
    elif isinstance(node, exp.Binary | exp.BitwiseNot):
        what = "this operator is not supported (use =, <>, <, >, IN, LIKE, BETWEEN, IS NULL)"
    else:
        what = "this is not part of the filter language"
    return f"At {shown(node, 40)}: {what}"


def shown(node: exp.Expr, limit: int, *, quote: bool = True) -> str:
    """A node as SQL text for a message (regenerated from the tree, clipped)."""
    try:
        text = node.sql(dialect=FilterSQL)
    except SqlglotError:
        text = type(node).__name__
    return quoted(text, limit) if quote else clip(text, limit)


def position_of(node: exp.Expr) -> int | None:
    """The first known character position inside `node`."""
    starts = [
        n.meta["start"]
        for n in node.walk()
        if isinstance(n, exp.Expr) and isinstance(n.meta.get("start"), int)
    ]
    return min(starts) if starts else None
