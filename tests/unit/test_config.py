"""The config (config.py, config_read.py, config_store.py): strict loading with located messages,
edits that keep comments, safe atomic saves."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Config, ConfigError, Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore

SAMPLE = """\
# my klaviyo config
[connections.prod]   # production account
display_name = "Prod"  # shown in the TUI
revision = "2025-01-01"

# segments come next
[segments.vip]
source = "vip.csv"
filter = "spend > 100"

[exports.weekly]
connection = "prod"
list_id = "Xy12Ab"
segments = ["vip"]  # only vip for now
schedule = "0 6 * * 1"

[exports.weekly.mapping]
email = "Email"  # the email column
first_name = "First"
location = {city = "City"}
properties = ["plan"]
"""


@pytest.fixture
def cfg_path() -> Path:
    path = paths.config_path()
    path.write_text(SAMPLE, encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def test_missing_file_is_an_empty_config() -> None:
    assert load_config() == Config()


def test_load_sample(cfg_path: Path) -> None:
    config = load_config(cfg_path)
    assert config.connections["prod"].display_name == "Prod"
    assert config.connections["prod"].base_url == "https://a.klaviyo.com"
    assert config.segments["vip"].filter == "spend > 100"
    export = config.exports["weekly"]
    assert export.segments == ("vip",)
    assert export.mapping.location == {"city": "City"}
    assert export.mapping.properties == ("plan",)
    assert export.mapping.columns() == ["Email", "First", "City", "plan"]
    assert config.problems("weekly") == []


def test_edit_keeps_comments_and_order(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    weekly = store.config.exports["weekly"]
    store.put_connection(Connection("prod", "Production", revision="2025-01-01"))
    store.put_export(
        dataclasses.replace(weekly, mapping=dataclasses.replace(weekly.mapping, last_name="Last"))
    )
    store.put_segment(Segment("all", "all.parquet"))
    store.save()
    text = cfg_path.read_text()
    for comment in (
        "# my klaviyo config",
        "# production account",
        "# shown in the TUI",
        "# segments come next",
        "# only vip for now",
        "# the email column",
    ):
        assert comment in text
    assert 'display_name = "Production"  # shown in the TUI' in text
    assert text.index("[connections.prod]") < text.index("[segments.vip]")
    assert text.index("[segments.vip]") < text.index("[exports.weekly]")
    # a new item goes at the end as its own table (never by rebuilding [segments])
    assert text.endswith('\n\n[segments.all]\nsource = "all.parquet"\n')
    assert load_config(cfg_path).exports["weekly"].mapping.last_name == "Last"


def test_unchanged_save_does_not_rewrite(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    store.put_export(store.config.exports["weekly"])
    store.put_connection(store.config.connections["prod"])
    before = cfg_path.stat().st_ino
    store.save()
    assert cfg_path.read_text() == SAMPLE
    assert cfg_path.stat().st_ino == before


def test_new_file_has_header_mode_0600_and_round_trips() -> None:
    path = paths.config_path().parent / "sub" / "config.toml"
    store = ConfigStore(path)
    mapping = Mapping(email="E", location={"zip": "Zip"}, properties=("a", "b"))
    export = Export("e", "c", "L1", ("s",), mapping, schedule="@daily", list_name="News")
    store.put_connection(Connection("c", "C", base_url="http://127.0.0.1:8123"))
    store.put_segment(Segment("s", "db.sqlite", query="select * from t"))
    store.put_export(export)
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("# klaviyo-tui configuration")
    config = load_config(path)
    assert config.exports["e"] == export
    assert config.segments["s"].query == "select * from t"
    assert config.connections["c"].base_url == "http://127.0.0.1:8123"


def test_existing_mode_is_kept(cfg_path: Path) -> None:
    os.chmod(cfg_path, 0o640)
    store = ConfigStore(cfg_path)
    store.remove_segment("vip")
    store.save()
    assert stat.S_IMODE(cfg_path.stat().st_mode) == 0o640
    assert "vip" not in load_config(cfg_path).segments
    assert load_config(cfg_path).problems("weekly") == [
        "export 'weekly' uses segment 'vip', which is not defined; "
        "add [segments.vip] or fix the name"
    ]


def test_save_is_atomic_replace(cfg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ConfigStore(cfg_path)
    store.remove_export("weekly")
    calls: list[tuple[str, str]] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        calls.append((str(src), str(dst)))
        assert Path(src).parent == cfg_path.parent
        assert cfg_path.read_text() == SAMPLE  # untouched until the swap
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.save()
    assert len(calls) == 1
    assert calls[0][1] == str(cfg_path)
    assert "[exports" not in cfg_path.read_text()
    assert sorted(p.name for p in cfg_path.parent.iterdir()) == ["config.toml"]


def test_broken_toml_reports_location_and_is_never_written(cfg_path: Path) -> None:
    broken = SAMPLE.replace('list_id = "Xy12Ab"', 'list_id = "Xy12Ab\nx = @')
    cfg_path.write_text(broken)
    with pytest.raises(ConfigError) as info:
        load_config(cfg_path)
    message = str(info.value)
    assert str(cfg_path) in message
    assert "line 13" in message
    assert "column" in message
    with pytest.raises(ConfigError):
        ConfigStore(cfg_path)
    assert cfg_path.read_text() == broken


def test_file_broken_after_load_is_not_overwritten(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    store.remove_export("weekly")
    cfg_path.write_text("broken = [")
    with pytest.raises(ConfigError, match="changed by something else"):
        store.save()
    assert cfg_path.read_text() == "broken = ["


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[connections.p]\ndisplay_nam = 'x'\n", r"\[connections.p\] display_nam: unknown key"),
        ("[connections.p]\ndisplay_name = 3\n", r"display_name: must be a string"),
        ("[connections.p]\nbase_url = 'http://example.com'\n", r"plain http"),
        ("[segments.s]\nquery = 'select 1'\n", r"\[segments.s\] source: missing"),
        (
            "[exports.e]\nconnection='c'\nlist_id='L'\n[exports.e.mapping]\nfirst_name='F'\n",
            r"\[exports.e.mapping\] email: missing",
        ),
        ("[exports.e]\nconnection='c'\nlist_id='L'\n", r"no mapping"),
        (
            "[exports.e]\nconnection='c'\nlist_id='L'\nsegments=[1]\n[exports.e.mapping]\nemail='E'\n",
            r"segments: must be a list of strings",
        ),
        ("[exports.e.mapping]\nemail='E'\nlocation={town='T'}\n", r"location\] town: unknown key"),
        ("colour = 'red'\n", r"\[top level\] colour: unknown key"),
        ("connections = 3\n", r"connections must be a table"),
    ],
)
def test_type_and_key_errors_name_the_place(cfg_path: Path, text: str, expected: str) -> None:
    cfg_path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(cfg_path)
    assert str(cfg_path) in str(info.value)


KEY = "pk_" + "a1B2c3D4e5" * 3 + "wxyz"


@pytest.mark.parametrize(
    "text",
    [
        "[connections.p]\napi_key = 'whatever'\n",
        "[connections.p]\ntoken = 'whatever'\n",
        f"[connections.p]\ndisplay_name = '{KEY}'\n",
        f"[segments.s]\nsource = 'x.csv'\nfilter = \"k == '{KEY}'\"\n",
    ],
)
def test_api_keys_are_refused_without_echoing_them(cfg_path: Path, text: str) -> None:
    cfg_path.write_text(text)
    with pytest.raises(ConfigError, match="KLAVIYO_API_KEY") as info:
        load_config(cfg_path)
    assert KEY not in str(info.value)
    assert "keyring" in str(info.value)


def test_store_refuses_to_save_a_key(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    store.put_connection(Connection("prod", KEY))
    with pytest.raises(ConfigError, match="looks like an API key") as info:
        store.save()
    assert KEY not in str(info.value)
    assert cfg_path.read_text() == SAMPLE


def test_problems_for_bad_references(cfg_path: Path) -> None:
    cfg_path.write_text(
        SAMPLE.replace('connection = "prod"', 'connection = "nope"').replace(
            '"0 6 * * 1"', '"every monday"'
        )
    )
    config = load_config(cfg_path)  # still loads: one bad export must not block the others
    problems = config.problems("weekly")
    assert any("connection 'nope'" in p for p in problems)
    assert any("schedule" in p for p in problems)
    assert config.problems("missing") == [
        "there is no export named 'missing'; see the [exports] tables in the config"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_dir_gives_clear_error(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    store.remove_export("weekly")
    os.chmod(cfg_path.parent, 0o500)
    try:
        with pytest.raises(ConfigError, match="cannot save the config file") as info:
            store.save()
        assert "not changed" in str(info.value)
    finally:
        os.chmod(cfg_path.parent, 0o700)
    assert cfg_path.read_text() == SAMPLE


def test_failed_write_gives_clear_error(cfg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    store = ConfigStore(cfg_path)
    store.remove_export("weekly")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ConfigError, match="Permission denied") as info:
        store.save()
    assert "was not changed" in str(info.value)
    assert cfg_path.read_text() == SAMPLE


def test_location_edits_inline_and_sub_table(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    weekly = store.config.exports["weekly"]
    location = {"city": "City", "zip": "Zip"}
    store.put_export(
        dataclasses.replace(weekly, mapping=dataclasses.replace(weekly.mapping, location=location))
    )
    store.save()
    assert 'location = {city = "City", zip = "Zip"}' in cfg_path.read_text()
    cfg_path.write_text(
        SAMPLE.replace('location = {city = "City"}\n', "")
        + '\n[exports.weekly.mapping.location]\ncity = "City"  # town\ncountry = "C"\n'
    )
    store = ConfigStore(cfg_path)
    assert store.config.exports["weekly"].mapping.location == {"city": "City", "country": "C"}
    store.put_export(
        dataclasses.replace(weekly, mapping=dataclasses.replace(weekly.mapping, location=location))
    )
    store.save()
    text = cfg_path.read_text()
    assert 'city = "City"  # town' in text
    assert "country" not in text
    assert load_config(cfg_path).exports["weekly"].mapping.location == location
    store.put_export(
        dataclasses.replace(weekly, mapping=dataclasses.replace(weekly.mapping, location={}))
    )
    store.save()
    assert "location" not in cfg_path.read_text()


# ---- symlinked config files (dotfiles repos) ----


def test_symlinked_file_is_saved_at_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "klaviyo.toml"
    target.write_text(SAMPLE, encoding="utf-8")
    os.chmod(target, 0o640)
    link = paths.config_path()
    link.symlink_to(target)
    store = ConfigStore(link)
    store.remove_segment("vip")
    replaced: list[tuple[Path, Path]] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        replaced.append((Path(src), Path(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.save()
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert replaced == [(replaced[0][0], target)]
    assert replaced[0][0].parent == dotfiles  # the temp file sat beside the target
    assert "[segments.vip]" not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in dotfiles.iterdir()) == ["klaviyo.toml"]
    assert "vip" not in load_config(link).segments


def test_dangling_symlink_is_a_clear_error(tmp_path: Path) -> None:
    link = paths.config_path()
    link.symlink_to(tmp_path / "dotfiles" / "missing.toml")
    for attempt in (load_config, ConfigStore):
        with pytest.raises(ConfigError, match="symbolic link .* which does not exist") as info:
            attempt(link)
        assert "missing.toml" in str(info.value)
        assert info.value.hint
    assert link.is_symlink()
    assert not (tmp_path / "dotfiles").exists()


def test_symlink_to_target_deleted_after_loading_is_not_recreated(cfg_path: Path) -> None:
    target = cfg_path.with_name("real.toml")
    cfg_path.rename(target)
    cfg_path.symlink_to(target)
    store = ConfigStore(cfg_path)
    store.remove_export("weekly")
    target.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        store.save()
    assert cfg_path.is_symlink()
    assert not target.exists()


@pytest.mark.timeout(20)  # without the check, reading a FIFO would block forever
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_link_to_something_not_a_file_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    odd = tmp_path / "odd"
    if kind == "directory":
        odd.mkdir()
    else:
        os.mkfifo(odd)
    link = paths.config_path()
    link.symlink_to(odd)
    for attempt in (load_config, ConfigStore):
        with pytest.raises(ConfigError, match="not a regular file"):
            attempt(link)


# ---- removing an export with the segments only it used ----


def test_remove_export_prunes_segments_no_other_export_uses(cfg_path: Path) -> None:
    store = ConfigStore(cfg_path)
    weekly = store.config.exports["weekly"]
    store.put_segment(Segment("all", "all.parquet"))
    store.put_segment(Segment("lapsed", "lapsed.csv"))
    store.put_export(dataclasses.replace(weekly, segments=("vip", "all", "ghost")))
    store.put_export(dataclasses.replace(weekly, name="daily", segments=("all",)))
    store.save()
    store = ConfigStore(cfg_path)
    assert store.remove_export("weekly", prune_segments=True) == ["vip"]
    store.save()
    config = load_config(cfg_path)
    assert set(config.exports) == {"daily"}
    assert set(config.segments) == {"all", "lapsed"}  # "all" is still used, "lapsed" never was
    text = cfg_path.read_text()
    assert "# segments come next" not in text  # it sat right above [segments.vip]
    assert text.startswith("# my klaviyo config\n[connections.prod]   # production account\n")
    assert store.remove_export("daily") == []
    assert set(store.config.segments) == {"all", "lapsed"}
    assert store.remove_export("nope", prune_segments=True) == []


def test_writer_knows_every_key_the_reader_accepts() -> None:
    """Adding a key to config_read.py without the writer would silently drop it on every edit."""
    from klaviyo_tui.store import config_read as reader
    from klaviyo_tui.store import config_store as writer
    from klaviyo_tui.store.sync_config import SYNC_KEYS

    assert tuple(writer.CONNECTION_FIELDS) == reader._CONNECTION_KEYS
    assert tuple(writer.SEGMENT_FIELDS) == reader._SEGMENT_KEYS
    written_by_sync_spec = set(SYNC_KEYS)  # config_store._sync_spec
    assert set(writer.EXPORT_FIELDS) | {"mapping"} | written_by_sync_spec == set(
        reader._EXPORT_KEYS
    )
    assert set(writer.MAPPING_FIELDS) | {"location"} == set(reader._MAPPING_KEYS)
