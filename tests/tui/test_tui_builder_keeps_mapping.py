"""Opening a saved export in the builder and saving it unchanged changes nothing: a column the
config sends both as a profile field and as a custom property (the CLI allows it; the Columns
tab offers a mapped column no property tick) stays both, and the properties keep their order."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import SIZE, add_sandbox_connection, sample_csv, wait_screen, wait_until


async def test_saving_unchanged_keeps_a_column_sent_as_field_and_property(tmp_path: Path) -> None:
    add_sandbox_connection("http://127.0.0.1:9")  # never contacted
    store = ConfigStore()
    store.put_segment(Segment("vip", str(sample_csv(tmp_path / "customers.csv"))))
    mapping = Mapping(email="email", first_name="first_name", properties=("tier", "first_name"))
    store.put_export(Export("vip", "sandbox", "Y6nRLr", ("vip",), mapping, list_name="VIP"))
    store.save()
    before = paths.config_path(None).read_bytes()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        builder = ExportBuilderScreen(app.config.exports["vip"])
        app.push_screen(builder)
        await wait_until(pilot, lambda: app.screen is builder and builder.frame is not None, 1500)
        rule = str(builder.query_one("#properties-rule", Static).render())
        assert "as a custom property too" in rule and "first_name" in rule
        await pilot.press("ctrl+s")
        await wait_screen(pilot, HomeScreen)
    assert load_config().exports["vip"].mapping.properties == ("tier", "first_name")
    assert paths.config_path(None).read_bytes() == before
