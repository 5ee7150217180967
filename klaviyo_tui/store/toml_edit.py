"""Edit one table of a tomlkit document where its parts are, leaving every other byte alone.

Why not edit by key (`doc["exports"]["x"] = ...`)? One TOML table may be spread over the file: a
`[a.b]` header, dotted keys (`a.b.c = 1`), an inline table (`b = {c = 1}`), several headers of one
super-table split by other tables (tomlkit reads those through an `OutOfOrderTableProxy`). Editing
through the merged view rebuilds or drops parts: other tables vanish, inline tables crash. So this
module walks the raw bodies instead: `parts()` finds every fragment of a table, `merge()` edits
values where they are and adds new ones to the fragment a person would (the `[header]` table, else
the inline table, else next to the dotted keys), `drop()` removes entries with the comments that
belong to them and nothing else.

These edits do not keep tomlkit's internal maps current (a removed entry becomes `Null`, kept
comment lines become raw text): callers render with `as_string()` and parse again after each edit,
which also proves the result is valid TOML.

Comment ownership, for removals (a comment "touches" a line when no blank line is between):
a block touching a `[header]` from above, with a blank line above the block, belongs to that
header's table; a block touching only a table's lines belongs to that table; a block set apart by
blank lines belongs to nobody and stays, as does one that touches both a removed table's last line
and the next table's header. Comments beside a removed value (not a table) stay. Losing someone's
comment is worse than leaving a stray one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, InlineTable, Item, Key, Null, SingleKey, Table, Whitespace

Node = Container | Table | InlineTable
Body = list[tuple[Key | None, Item]]


@dataclass(frozen=True)
class Leaf:
    """One value to write. None removes it; a value equal to `default` is not added (a line that
    is already there keeps it, so "absent" and "default" both stay as the person wrote them).
    `exact`: the reader keeps this text as written (column names), so compare it unstripped."""

    value: Any
    default: Any = None
    exact: bool = False


@dataclass(frozen=True)
class Sub:
    """A sub-table to write. A new one goes in as `key = {...}` when `inline` (or when its parent is
    itself inline or dotted), else as its own `[...key]` header."""

    fields: dict[str, Leaf | Sub]
    inline: bool = True


@dataclass(frozen=True, eq=False)
class Part:
    """One keyed entry of a body: a value, or one fragment of a table."""

    owner: Node
    key: Key
    item: Item

    @property
    def index(self) -> int:
        """Found by identity each time: inserts into the same body move entries."""
        return _index(self.owner, self.item)


def body(node: Node) -> Body:
    return node.body if isinstance(node, Container) else node.value.body


def _index(owner: Node, item: Item) -> int:
    for i, (_, value) in enumerate(body(owner)):
        if value is item:
            return i
    raise LookupError("entry no longer in its table")  # a caller bug, never user input


def parts(nodes: Sequence[Node], key: str) -> list[Part]:
    """Every entry named `key` directly inside any of `nodes`, in file order."""
    return [
        Part(node, k, v)
        for node in nodes
        for k, v in body(node)
        if k is not None and k.key == key and not isinstance(v, Null)
    ]


def is_table(part: Part) -> bool:
    return isinstance(part.item, Table | InlineTable)


def has_header(key: Key, table: Table) -> bool:
    """Whether tomlkit renders `table` with its own `[header]` line (mirrors its renderer)."""
    if not table.is_super_table():
        return True
    if key.is_dotted():
        return False
    return any(
        not isinstance(v, Table | AoT | Whitespace | Null)
        or (isinstance(v, Table) and k is not None and k.is_dotted())
        for k, v in table.value.body
    )


def _rank(part: Part) -> int:
    """Where a new value goes: the table's header, else its inline table, else its dotted keys."""
    item = part.item
    if isinstance(item, InlineTable):
        return 1
    assert isinstance(item, Table)
    if has_header(part.key, item):
        return 0
    return 2 if part.key.is_dotted() else 3


def home(fragments: Sequence[Part]) -> Part:
    return min(fragments, key=_rank)  # min() keeps the first of equal rank: file order


def normal(value: Any, *, exact: bool = False) -> Any:
    """Compare as the reader sees values: strings stripped (unless `exact`), dates as ISO text,
    tuples as lists."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str):
        return value if exact else value.strip()
    if isinstance(value, list | tuple):
        return [normal(v, exact=exact) for v in value]
    if isinstance(value, dict):
        return {k: normal(v, exact=exact) for k, v in value.items()}
    return value


def same(a: Any, b: Any, *, exact: bool = False) -> bool:
    return bool(normal(a, exact=exact) == normal(b, exact=exact))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def has_values(spec: Sub) -> bool:
    """Whether writing `spec` from scratch writes anything."""
    return any(
        has_values(want)
        if isinstance(want, Sub)
        else want.value is not None and not same(want.value, want.default, exact=want.exact)
        for want in spec.fields.values()
    )


def build(spec: Sub, *, inline: bool) -> Table | InlineTable:
    """A fresh table holding `spec`'s values (defaults and None left out)."""
    table: Table | InlineTable = tomlkit.inline_table() if inline else tomlkit.table()
    for key, want in spec.fields.items():
        if isinstance(want, Sub):
            if has_values(want):
                table.append(key, build(want, inline=inline or want.inline))
        elif want.value is not None and not same(want.value, want.default, exact=want.exact):
            table.append(key, _plain(want.value))
    return table


def merge(fragments: Sequence[Part], spec: Sub) -> list[Part]:
    """Write `spec` into the table made of `fragments`, in place; returns the values to `drop()`."""
    nodes = _nodes(fragments)
    doomed: list[Part] = []
    for key, want in spec.fields.items():
        found = parts(nodes, key)
        if isinstance(want, Sub):
            tables = [p for p in found if is_table(p)]
            if tables:
                doomed += merge(tables, want)
            elif has_values(want):
                target = home(fragments)
                inline = want.inline or _rank(target) > 0
                add(target, key, build(want, inline=inline))
        elif found:
            if want.value is None:
                doomed += found
            elif not same(found[0].item.unwrap(), want.value, exact=want.exact):
                _replace(found[0], want.value)
        elif want.value is not None and not same(want.value, want.default, exact=want.exact):
            add(home(fragments), key, tomlkit.item(_plain(want.value)))
    return doomed


def emptied(fragments: Sequence[Part], spec: Sub) -> list[Part]:
    """Fragments of `spec`'s sub-tables left with no value (to `drop()` after a `merge()`)."""
    doomed: list[Part] = []
    nodes = _nodes(fragments)
    for key, want in spec.fields.items():
        if isinstance(want, Sub):
            for part in parts(nodes, key):
                if not is_table(part):
                    continue
                if isinstance(part.item, Table | InlineTable) and _is_empty(part.item):
                    doomed.append(part)
                else:
                    doomed += emptied([part], want)
    return doomed


def _nodes(fragments: Sequence[Part]) -> list[Node]:
    return [p.item for p in fragments if isinstance(p.item, Table | InlineTable)]


def _is_empty(item: Table | InlineTable) -> bool:
    return all(
        isinstance(v, Table | InlineTable) and _is_empty(v)
        for k, v in body(item)
        if k is not None and not isinstance(v, Null)
    )


def _replace(part: Part, value: Any) -> None:
    """A new value in the old one's place, keeping its indent and line comment."""
    new = tomlkit.item(_plain(value))
    old = part.item.trivia
    new.trivia.indent = old.indent
    new.trivia.comment_ws = old.comment_ws
    new.trivia.comment = old.comment
    new.trivia.trail = old.trail
    body(part.owner)[part.index] = (part.key, new)


def add(target: Part, key: str, item: Item) -> None:
    """Add `key` to the fragment `target`: values right after its last value, tables at its end."""
    node = target.item
    assert isinstance(node, Table | InlineTable)
    if isinstance(node, InlineTable):  # before the space that closes `{ a = 1 }`, not after it
        entries = node.value.body
        closing = entries[-1] if entries and isinstance(entries[-1][1], Whitespace) else None
        if closing is not None:
            entries.pop()
        node.append(key, item)
        if closing is not None:
            entries.append(closing)
        return
    if isinstance(item, Table):
        node.append(key, item)
        return
    entries = node.value.body
    position, indent = 0, ""
    for i, (k, v) in enumerate(entries):
        if k is None or isinstance(v, Null):
            continue
        if isinstance(v, AoT) or (isinstance(v, Table) and has_header(k, v)):
            break
        position = i + 1
        if not isinstance(v, Table):
            indent = v.trivia.indent
    if position:
        last = _last_value(entries[position - 1][1])
        if "\n" not in last.trivia.trail:  # the file's last line had no newline
            last.trivia.trail += "\n"
    elif has_header(target.key, node) and "\n" not in node.trivia.trail:
        node.trivia.trail += "\n"
    item.trivia.indent = indent
    entries.insert(position, (SingleKey(key), item))


def _last_value(item: Item) -> Item:
    if isinstance(item, Table):
        keyed = [v for k, v in item.value.body if k is not None and not isinstance(v, Null)]
        return _last_value(keyed[-1]) if keyed else item
    return item


# ---- removing ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Line:
    """One rendered piece of the document, in file order; `chain` holds its entries' ids."""

    kind: str  # "header", "value", "comment" or "blank"
    owner: Node
    item: Item
    chain: tuple[int, ...]


def _lines(node: Node, chain: tuple[int, ...] = ()) -> Iterator[_Line]:
    for k, v in body(node):
        if isinstance(v, Null):
            continue
        here = (*chain, id(v))
        if k is None:
            yield _Line("comment" if isinstance(v, Comment) else "blank", node, v, here)
        elif isinstance(v, Table):
            if has_header(k, v):
                yield _Line("header", node, v, here)
            yield from _lines(v, here)
        else:
            yield _Line("value", node, v, here)


def drop(root: Container, doomed: Sequence[Part]) -> None:
    """Remove entries (values or table fragments) with the comments that belong to them."""
    lines = list(_lines(root))
    spans: list[tuple[Part, int, int]] = []
    gone: set[int] = set()
    for part in doomed:
        if isinstance(part.owner, InlineTable):
            _drop_inline(part)
            continue
        ids = [i for i, line in enumerate(lines) if id(part.item) in line.chain]
        start, end = (ids[0], ids[-1] + 1) if ids else (0, 0)
        spans.append((part, start, end))
        gone.update(range(start, end))
    for _, start, end in spans:
        gone.difference_update(_kept(lines, start, end))
    for _, start, end in spans:  # comments above a header, set apart by a blank line
        if start == end or lines[start].kind != "header":
            continue
        first = start
        while first > 0 and lines[first - 1].kind == "comment":
            first -= 1
        if 0 < first < start and lines[first - 1].kind == "blank":
            gone.update(range(first, start))
    inside: set[int] = set()
    for part, start, end in spans:
        inside.update(range(start, end))
        kept = [lines[i] for i in range(start, end) if i not in gone]
        if _after_blank(lines, gone, start):  # no second blank line where one is already
            while kept and kept[0].kind == "blank":
                kept.pop(0)
        text = "".join(line.item.as_string() for line in kept)
        body(part.owner)[part.index] = (None, tomlkit.ws(text) if text else Null())
    for i in sorted(gone - inside):
        line = lines[i]
        body(line.owner)[_index(line.owner, line.item)] = (None, Null())


def _kept(lines: list[_Line], start: int, end: int) -> set[int]:
    """The comment and blank lines inside a removed entry's span that belong to nobody in it.

    Each comment block is judged by what it touches (no blank line between): the entry's line
    above it, or the line below it. Blocks touching only lines of the entry go with it; a block
    set apart by blank lines stays; at the span's end, a block touching only what follows stays,
    as does one touching both when what follows is a header (it may be that table's comment).
    Blank lines beside a kept block, and the span's closing blank lines, stay too.
    """
    kept: set[int] = set()
    i = start
    while i < end:
        if lines[i].kind not in ("comment", "blank"):
            i += 1
            continue
        groups: list[list[int]] = []
        while i < end and lines[i].kind in ("comment", "blank"):
            if groups and lines[groups[-1][0]].kind == lines[i].kind:
                groups[-1].append(i)
            else:
                groups.append([i])
            i += 1
        at_end = i == end
        header_next = i < len(lines) and lines[i].kind == "header"
        for g, group in enumerate(groups):
            if lines[group[0]].kind != "comment":
                continue
            above, below = g == 0, g == len(groups) - 1
            if above and below:
                keep = at_end and header_next
            else:
                keep = not above and (at_end or not below)
            if keep:
                kept.update(group)
                kept.update(groups[g - 1] if g else [])
                kept.update(groups[g + 1] if g + 1 < len(groups) else [])
        if at_end and lines[groups[-1][0]].kind == "blank":
            kept.update(groups[-1])
    return kept


def _after_blank(lines: list[_Line], gone: set[int], start: int) -> bool:
    before = [i for i in range(start) if i not in gone]
    return not before or lines[before[-1]].kind == "blank"


def _drop_inline(part: Part) -> None:
    """Remove one entry of an inline table with one of the commas beside it."""
    entries = body(part.owner)
    index = part.index
    keyed = [i for i, (k, v) in enumerate(entries) if k is not None and not isinstance(v, Null)]
    before = [i for i in keyed if i < index]
    after = [i for i in keyed if i > index]
    between = range(before[-1] + 1, index) if before else range(index + 1, after[0] if after else 0)
    for i in between:
        if isinstance(entries[i][1], Whitespace):
            entries[i] = (None, Null())
    entries[index] = (None, Null())
