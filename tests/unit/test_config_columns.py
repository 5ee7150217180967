"""Column names in the config are the file's header, byte for byte: the reader keeps spaces at
either end (`"code "` is not `code`), the writer writes them and sees a change of spaces alone as
a change, and names that are no column names keep their trimming."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from klaviyo_tui.services.columns import close_column, column_label, listed_columns
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Mapping
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.sync_config import Subscribe, SyncSettings

CONFIG = """\
[connections.shop]
display_name = "Shop"

[segments.sp]
source = " sp.csv "

[exports.sp]
connection = " shop "
list_id = " V2aba8 "
segments = ["sp"]
subscribe = { channel = "email", consented_at_column = " optin at ", historical = true }

[exports.sp.mapping]
email = " email"
first_name = "name "
location = { city = "\\tcity " }
properties = ["code ", "code", "  ", ""]
"""


def _written(text: str) -> Path:
    path = paths.config_path()
    path.write_text(text, encoding="utf-8")
    return path


def test_column_names_load_back_exactly() -> None:
    export = load_config(_written(CONFIG)).exports["sp"]
    assert export.mapping == Mapping(
        email=" email",
        first_name="name ",
        location={"city": "\tcity "},
        properties=("code ", "code", "  "),  # "" names no column; "  " might
    )
    assert export.mapping.columns() == [" email", "name ", "\tcity ", "code ", "code", "  "]
    assert export.sync.subscribe is not None
    assert export.sync.subscribe.consented_at_column == " optin at "
    # names that are not column names keep their trimming
    assert (export.connection, export.list_id) == ("shop", "V2aba8")
    assert load_config(paths.config_path()).segments["sp"].source == "sp.csv"


def test_writer_round_trips_spaces_and_sees_them_as_a_change() -> None:
    path = _written(
        CONFIG.replace('"name "', '"name"').replace('["code ", "code", "  ", ""]', '["code"]')
    )
    store = ConfigStore(path)
    export = store.config.exports["sp"]
    assert (export.mapping.first_name, export.mapping.properties) == ("name", ("code",))
    spaced = dataclasses.replace(
        export,
        mapping=dataclasses.replace(
            export.mapping, first_name="name ", properties=("code ",), location={"zip": " zip"}
        ),
        sync=SyncSettings(subscribe=Subscribe("email", "optin ", True, "2026-01-01", "me")),
    )
    store.put_export(spaced)
    store.save()
    again = load_config(path).exports["sp"]
    assert again.mapping == spaced.mapping
    assert again.sync.subscribe == spaced.sync.subscribe
    assert 'first_name = "name "' in path.read_text(encoding="utf-8")


def test_new_export_with_spaced_columns_reads_back_as_written() -> None:
    path = _written(CONFIG)
    store = ConfigStore(path)
    export = store.config.exports["sp"]
    store.put_export(dataclasses.replace(export, name="copy"))
    store.save()
    assert load_config(path).exports["copy"].mapping == export.mapping


def test_typed_lists_labels_and_hints() -> None:
    columns = ["email", "code", "code ", "name "]
    assert listed_columns("code ,code", columns) == ("code ", "code")  # as typed, when columns
    assert listed_columns("email, name ", columns) == ("email", "name ")
    assert listed_columns("email, nope , ", columns) == ("email", "nope")  # refused later
    assert [column_label(c) for c in ["code", "code ", "", "a,b"]] == [
        "code",
        "'code '",
        "''",
        "'a,b'",
    ]
    assert close_column("name", columns) == "name "
    assert close_column("CODE", ["code "]) == "code "
    assert close_column("code", ["email"]) is None
