"""Every valid layout of the config file survives every edit the app makes.

The property test writes a random config in a random valid TOML layout (tables in any order, split
super-tables, dotted keys, inline tables, `mapping`/`location` as sub-tables, inline or dotted,
comments everywhere), applies random edits through `ConfigStore`, and checks after each one: the
text is valid TOML to an independent parser (tomllib); the edited item reads back as put (or is
gone); every other item reads back unchanged; and every line that belongs to another item or to
nobody (free comments, `[kind]` headers) is still there, byte for byte and in order, as are the
edited item's comments, headers and unchanged values.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from tomlkit import item as toml_item
from tomlkit.items import SingleKey

from klaviyo_tui.store import paths
from klaviyo_tui.store.config import (
    DEFAULT_BASE_URL,
    DEFAULT_REVISION,
    LOCATION_FIELDS,
    PROFILE_FIELDS,
    Config,
    Connection,
    Export,
    Mapping,
    Segment,
)
from klaviyo_tui.store.config_read import config_from_data, load_config
from klaviyo_tui.store.config_store import ConfigStore

KINDS = ("connections", "segments", "exports")
NAMES = {
    "connections": ("acme", "new one", "b2b"),
    "segments": ("vip", "x.y", "crm"),
    "exports": ("weekly", "exp 3", "b-2"),
}
TEXTS = ("Acme prod", 'say "hi"', "ünï", "c:\\data")


def key(name: str) -> str:
    return SingleKey(name).as_string()


def value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
    return str(toml_item(list(v) if isinstance(v, tuple) else v).as_string())


# ---- random configs ----


def pick(data: st.DataObject, *options: Any) -> Any:
    return data.draw(st.sampled_from(options))


def draw_connection(data: st.DataObject, name: str) -> Connection:
    return Connection(
        name,
        display_name=pick(data, name, *TEXTS),
        base_url=pick(data, DEFAULT_BASE_URL, "http://127.0.0.1:8123"),
        revision=pick(data, DEFAULT_REVISION, "2025-01-01"),
        consent_accepted_at=pick(data, None, "2026-11-28T10:15:00+00:00"),
        consent_accepted_by=pick(data, None, "maria"),
    )


def draw_segment(data: st.DataObject, name: str) -> Segment:
    return Segment(
        name,
        source=pick(data, "vip.csv", "db.sqlite", "data/x.parquet"),
        query=pick(data, None, "select * from t"),
        filter=pick(data, None, "spend > 100", *TEXTS[1:2]),
    )


def draw_export(data: st.DataObject, name: str) -> Export:
    subset = st.lists(st.sampled_from(PROFILE_FIELDS[1:]), unique=True, max_size=3)
    places = st.lists(st.sampled_from(LOCATION_FIELDS), unique=True, max_size=3)
    mapping = Mapping(
        email=pick(data, "Email", "e mail"),
        location={f: f"col_{f}" for f in data.draw(places)},
        properties=tuple(data.draw(st.lists(st.sampled_from(["plan", "ltv"]), unique=True))),
        **{f: f"{f}_col" for f in data.draw(subset)},
    )
    return Export(
        name,
        connection=pick(data, *NAMES["connections"]),
        list_id=pick(data, "Y6nRLr", "L1"),
        segments=tuple(data.draw(st.lists(st.sampled_from(NAMES["segments"]), unique=True))),
        mapping=mapping,
        default_region=pick(data, "US", "GB"),
        schedule=pick(data, None, "0 6 * * *"),
        list_name=pick(data, None, "VIP"),
    )


DRAW = {"connections": draw_connection, "segments": draw_segment, "exports": draw_export}


def tree(item: Any) -> dict[str, Any]:
    """key -> (value, default), or a nested dict for a sub-table, in the writer's order."""
    if isinstance(item, Connection):
        return {
            "display_name": (item.display_name, item.name),
            "base_url": (item.base_url, DEFAULT_BASE_URL),
            "revision": (item.revision, DEFAULT_REVISION),
            "consent_accepted_at": (item.consent_accepted_at, None),
            "consent_accepted_by": (item.consent_accepted_by, None),
        }
    if isinstance(item, Segment):
        return {f: (getattr(item, f), None) for f in ("source", "query", "filter")}
    m = item.mapping
    mapping: dict[str, Any] = {f: (getattr(m, f), None) for f in PROFILE_FIELDS}
    mapping["location"] = {f: (m.location.get(f), None) for f in LOCATION_FIELDS}
    mapping["properties"] = (list(m.properties), [])
    return {
        "connection": (item.connection, None),
        "list_id": (item.list_id, None),
        "list_name": (item.list_name, None),
        "segments": (list(item.segments), []),
        "default_region": (item.default_region, "US"),
        "schedule": (item.schedule, None),
        "mapping": mapping,
    }


def values(t: dict[str, Any]) -> dict[str, Any]:
    return {k: values(v) if isinstance(v, dict) else v[0] for k, v in t.items()}


def concrete(data: st.DataObject, t: dict[str, Any]) -> dict[str, Any]:
    """What the file says: None left out, defaults left out or written (drawn)."""
    out: dict[str, Any] = {}
    for k, v in t.items():
        if isinstance(v, dict):
            if sub := concrete(data, v):
                out[k] = sub
        elif v[0] is not None and (v[0] != v[1] or data.draw(st.booleans())):
            out[k] = v[0]
    return out


# ---- random layouts ----


@dataclass
class Line:
    text: str
    owner: str | None  # "kind/name" of the item it belongs to; None: nobody's
    role: str = "value"  # "value", "header" or "comment"
    path: tuple[str, ...] = ()  # for values: the keys it writes (a prefix covers a subtree)
    sub: str = ""  # "location" for the lines of a [...mapping.location] table


@dataclass
class Block:
    header: str
    owner: str | None
    lines: list[Line] = field(default_factory=list)
    parent: Block | None = None
    sub: str = ""


class Layout:
    """Renders items into a valid layout and remembers which line belongs to what."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.top: list[Line] = []
        self.blocks: list[Block] = []
        self.kind_blocks: dict[str, Block] = {}
        self.count = 0

    def comment(self, what: str, owner: str | None, sub: str = "") -> Line:
        self.count += 1
        return Line(f"# {what} {self.count}", owner, "comment", sub=sub)

    def values(
        self,
        owner: str,
        text: tuple[str, ...],
        path: tuple[str, ...],
        t: dict[str, Any],
        sub: str = "",
    ) -> list[Line]:
        """`k = v` lines under the dotted key `text` (the item path `path`); a sub-table as
        dotted lines or as one inline value (drawn)."""
        lines = []
        for k, v in t.items():
            if isinstance(v, dict) and self.data.draw(st.booleans()):
                lines += self.values(owner, (*text, k), (*path, k), v, sub)
                continue
            self.count += 1
            comment = f"  # on {self.count}" if self.data.draw(st.booleans()) else ""
            dotted = ".".join(key(p) for p in (*text, k))
            sep = pick(self.data, " = ", "=")
            if isinstance(v, list) and v and self.data.draw(st.booleans()):  # one item a line
                items = [f"    {value(x)},  # item {self.count}" for x in v]
                rendered = "\n".join(["[", *items, "]"])
            else:
                rendered = value(v)
            line = f"{dotted}{sep}{rendered}{comment}"
            lines.append(Line(line, owner, path=(*path, k), sub=sub))
        return lines

    def block(
        self, header: str, owner: str | None, parent: Block | None = None, sub: str = ""
    ) -> Block:
        self.count += 1
        decorate = self.data.draw(st.booleans())
        text = header + (f"  # header {self.count}" if decorate else "")
        block = Block(text, owner, parent=parent, sub=sub)
        self.blocks.append(block)
        return block

    def kind_block(self, kind: str) -> Block:
        if kind not in self.kind_blocks:
            self.kind_blocks[kind] = self.block(f"[{kind}]", None)
        return self.kind_blocks[kind]

    def item(self, kind: str, name: str, t: dict[str, Any], form: str) -> None:
        owner = f"{kind}/{name}"
        if form == "header":
            block = self.block(f"[{kind}.{key(name)}]", owner)
            self.header_item(kind, name, block, t)
            return
        if not t and form.startswith("dotted"):
            form = form.replace("dotted", "inline")  # nothing to write as dotted keys
        if form.endswith("top"):
            prefix: tuple[str, ...] = (kind, name)
            target = self.top
        else:
            prefix, target = (name,), self.kind_block(kind).lines
        if form.startswith("inline"):
            dotted = ".".join(key(p) for p in prefix)
            target.append(Line(f"{dotted} = {value(t)}", owner, path=()))
        else:
            target += self.values(owner, prefix, (), t)

    def header_item(self, kind: str, name: str, block: Block, t: dict[str, Any]) -> None:
        owner = f"{kind}/{name}"
        block.lines += self.values(owner, (), (), {k: v for k, v in t.items() if k != "mapping"})
        if "mapping" not in t:
            return
        mapping = dict(t["mapping"])
        form = pick(self.data, "subtable", "inline", "dotted")
        if form == "inline":
            block.lines.append(Line(f"mapping = {value(mapping)}", owner, path=("mapping",)))
            return
        location = mapping.pop("location", None)
        here, text = block, ("mapping",) if form == "dotted" else ()
        if form == "subtable":
            here = self.block(f"[{kind}.{key(name)}.mapping]", owner, parent=block)
        here.lines += self.values(owner, text, ("mapping",), mapping)
        if location is None:
            return
        # tomlkit can't read `[..mapping.location]` out of order under dotted `mapping.x` keys
        if form == "subtable" and pick(self.data, "table", "in place") == "table":
            header = f"[{kind}.{key(name)}.mapping.location]"
            table = self.block(header, owner, parent=here, sub="location")
            table.lines += self.values(owner, (), ("mapping", "location"), location, "location")
        else:
            here.lines += self.values(owner, text, ("mapping",), {"location": location})

    def render(self) -> list[Line]:
        data = self.data
        out: list[Line] = []
        if data.draw(st.booleans()):
            out += [self.comment("top of file", None), Line("", None)]
        for line in self.top:
            out.append(line)
            if data.draw(st.booleans()):
                out.append(self.comment("among the top lines", None))
        if out:
            out.append(Line("", None))
        order: list[Block] = []
        for block in self.blocks:  # parents come first in self.blocks
            low = order.index(block.parent) + 1 if block.parent else 0
            order.insert(data.draw(st.integers(low, len(order))), block)
        for block in order:
            owner, sub = block.owner, block.sub
            if data.draw(st.booleans()):
                out += [Line("", None), self.comment("free", None), Line("", None)]
            if data.draw(st.booleans()):
                out += [Line("", None), self.comment("lead", owner, sub)]
            out.append(Line(block.header, owner, "header", sub=sub))
            indent = pick(data, "", "  ")
            body = [replace(line, text=indent + line.text) for line in block.lines]
            if len(body) > 1 and data.draw(st.booleans()):
                body.insert(
                    data.draw(st.integers(1, len(body) - 1)), self.comment("inner", owner, sub)
                )
            out += body
            if owner is not None and data.draw(st.booleans()):
                out += [self.comment("trail", owner, sub), Line("", None)]
        return out


def draw_file(data: st.DataObject) -> tuple[Config, list[Line]]:
    layout = Layout(data)
    items: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        names = data.draw(st.lists(st.sampled_from(NAMES[kind]), unique=True, max_size=3))
        items[kind] = {name: DRAW[kind](data, name) for name in names}
        mode = pick(data, "headers", "kind table", "inline top")
        if mode == "inline top" and names:
            inline = {name: concrete(data, tree(item)) for name, item in items[kind].items()}
            layout.top.append(Line(f"{kind} = {value(inline)}", f"shared:{kind}"))
            continue
        forms = (
            ("header", "dotted", "inline")
            if mode == "kind table"
            else ("header", "dotted top", "inline top")
        )
        for name, item in items[kind].items():
            layout.item(kind, name, concrete(data, tree(item)), pick(data, *forms))
    config = Config(**items)
    return config, layout.render()


# ---- the property ----


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(line == hay for hay in it) for line in needles)


def changed_paths(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every path (and each of its prefixes) under which `old` and `new` differ."""
    if old == new:
        return set()
    out = {prefix[:i] for i in range(len(prefix) + 1)}
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old.keys() | new.keys():
            out |= changed_paths(old.get(k), new.get(k), (*prefix, k))
    return out


def protected(lines: list[Line], dirty: set[str], owner: str, old: Any, new: Any) -> list[str]:
    """The lines an edit of `owner` (from `old` to `new`, None when removed) must leave alone."""
    changes = changed_paths(values(tree(old)), values(tree(new))) if old and new else None
    location_gone = (
        bool(new) and not isinstance(new, (Connection, Segment)) and not new.mapping.location
    )
    kind = owner.split("/")[0]
    out = []
    for line in lines:
        if not line.text or line.owner in dirty or line.owner == f"shared:{kind}":
            continue
        if line.owner == owner:
            if changes is None or (line.sub == "location" and location_gone):
                continue
            if line.role == "value" and line.path in changes:
                continue
        out += line.text.split("\n")
    return out


def expected_after(config: Config, op: tuple[Any, ...]) -> tuple[Config, list[str]]:
    kind, name = op[1], op[2]
    items = {k: dict(getattr(config, k)) for k in KINDS}
    pruned: list[str] = []
    if op[0] == "put":
        items[kind][name] = op[3]
    else:
        removed = items[kind].pop(name, None)
        if kind == "exports" and op[3] and removed is not None:
            used = {s for e in items["exports"].values() for s in e.segments}
            pruned = [s for s in removed.segments if s not in used and s in items["segments"]]
            for segment in pruned:
                del items["segments"][segment]
    return Config(**items), pruned


def apply(store: ConfigStore, op: tuple[Any, ...]) -> list[str]:
    what, kind, name, arg = op
    if what == "put":
        put: dict[str, Any] = {
            "connections": store.put_connection,
            "segments": store.put_segment,
            "exports": store.put_export,
        }
        put[kind](arg)
        return []
    if kind == "exports":
        return store.remove_export(name, prune_segments=arg)
    (store.remove_connection if kind == "connections" else store.remove_segment)(name)
    return []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_layout_survives_every_edit(data: st.DataObject) -> None:
    config, lines = draw_file(data)
    text = "\n".join(line.text for line in lines)
    text += "\n" if data.draw(st.booleans()) else ""
    path = paths.config_path()
    path.write_text(text, encoding="utf-8")
    note(f"--- file\n{text}")
    assert load_config(path) == config, text  # the reader accepts every layout
    store = ConfigStore(path)
    dirty: set[str] = set()
    for _ in range(data.draw(st.integers(1, 3))):
        kind = pick(data, *KINDS)
        name = pick(data, *NAMES[kind], "fresh")
        if data.draw(st.booleans()):
            op: tuple[Any, ...] = ("put", kind, name, DRAW[kind](data, name))
        else:
            op = ("remove", kind, name, data.draw(st.booleans()))
        before = getattr(config, kind).get(name)
        after = op[3] if op[0] == "put" else None
        config, pruned = expected_after(config, op)
        gone = {f"segments/{s}" for s in pruned} | ({"shared:segments"} if pruned else set())
        keep = protected(lines, dirty | gone, f"{kind}/{name}", before, after)
        note(f"--- {op}")
        assert apply(store, op) == pruned
        result = store.dumps()
        note(result)
        assert config_from_data(tomllib.loads(result), path) == config, result
        assert store.config == config
        assert is_subsequence(keep, result.splitlines()), (
            f"{op}\n--- before\n{text}\n--- after\n{result}"
        )
        dirty |= {f"{kind}/{name}", f"shared:{kind}", *gone}
    store.save()
    assert path.read_text(encoding="utf-8") == store.dumps()
    assert load_config(path) == config


# ---- the shapes reported from main ----

README_SHAPE = """\
[segments.vip_customers]
source = "/data/customers.csv"   # what they bought

[exports.vip_to_klaviyo]
connection = "acme"
list_id = "Y6nRLr"
segments = ["vip_customers"]

[exports.vip_to_klaviyo.mapping]
email = "email"
location = { city = "city", zip = "postcode" }
"""


def two_readmes() -> str:
    second = README_SHAPE.replace("vip_customers", "crm").replace("vip_to_klaviyo", "crm_sync")
    return README_SHAPE + "\n" + second


def test_saving_an_export_keeps_interleaved_exports_and_segments() -> None:
    path = paths.config_path()
    path.write_text(two_readmes(), encoding="utf-8")
    store = ConfigStore(path)
    export = store.config.exports["vip_to_klaviyo"]
    store.put_export(replace(export, schedule="0 6 * * *"))
    store.save()
    config = load_config(path)
    assert set(config.exports) == {"vip_to_klaviyo", "crm_sync"}
    assert set(config.segments) == {"vip_customers", "crm"}
    assert config.exports["vip_to_klaviyo"].schedule == "0 6 * * *"
    text = path.read_text()
    assert text == two_readmes().replace(
        'segments = ["vip_customers"]\n', 'segments = ["vip_customers"]\nschedule = "0 6 * * *"\n'
    )


@pytest.mark.parametrize(
    "text",
    [
        '[connections.a]\ndisplay_name = "A"\n\n[segments.s]\nsource = "s.csv"\n\n'
        '[connections.b]\ndisplay_name = "B"\n',
        'connections.a.display_name = "A"\nconnections.b = {display_name = "B"}\n',
        '[connections]\na.display_name = "A"  # dotted\nb = {display_name = "B"}\n',
    ],
    ids=["split", "dotted-top", "dotted-in-table"],
)
def test_adding_a_connection_keeps_the_others(text: str) -> None:
    path = paths.config_path()
    path.write_text(text, encoding="utf-8")
    store = ConfigStore(path)
    store.put_connection(Connection("c", "C"))
    store.save()
    assert path.read_text() == text + ("" if text.endswith("\n\n") else "\n") + (
        '[connections.c]\ndisplay_name = "C"\n'
    )
    assert set(load_config(path).connections) == {"a", "b", "c"}


def test_inline_table_config_is_edited_not_crashed() -> None:
    path = paths.config_path()
    text = (
        'connections = {a = {display_name = "A"}}\n'
        'segments = {s = {source = "s.csv"}}\n'
        'exports = {e = {connection = "a", list_id = "L", segments = ["s"], '
        'mapping = {email = "E", location = {city = "C"}}}}\n'
    )
    path.write_text(text, encoding="utf-8")
    store = ConfigStore(path)
    export = store.config.exports["e"]
    mapping = replace(export.mapping, location={"zip": "Z"}, first_name="F")
    store.put_export(replace(export, mapping=mapping))
    store.put_connection(Connection("b", "B"))
    store.remove_segment("s")
    store.save()
    config = load_config(path)
    assert config.exports["e"].mapping == mapping
    assert set(config.connections) == {"a", "b"}
    assert config.segments == {}
    assert path.read_text().splitlines()[0] == (
        'connections = {a = {display_name = "A"}, b = {display_name = "B"}}'
    )


def test_a_key_added_to_a_spaced_inline_table_goes_before_its_closing_space() -> None:
    """`{ email = "email" }` gains `, first_name = "name" }`, not `,  first_name = "name"}`."""
    path = paths.config_path()
    head = '[segments.s]\nsource = "s.csv"\n\n[exports.e]\nconnection = "a"\nlist_id = "L"\n'
    text = head + 'segments = ["s"]\nmapping = { email = "email", properties = ["orders"] }\n'
    path.write_text(text, encoding="utf-8")
    store = ConfigStore(path)
    export = store.config.exports["e"]
    store.put_export(replace(export, mapping=replace(export.mapping, first_name="name")))
    store.save()
    assert path.read_text() == text.replace('["orders"] }', '["orders"], first_name = "name" }')
