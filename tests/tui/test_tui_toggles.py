"""A ticked and an unticked box differ in their characters, not only in colour (NO_COLOR)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from klaviyo_tui.tui.widgets.toggles import Checkbox, RadioButton, SelectionList


class Toggles(App[None]):
    def compose(self) -> ComposeResult:
        yield Checkbox("on", True, id="on")
        yield Checkbox("off", False, id="off")
        yield RadioButton("picked", True, id="picked")
        yield RadioButton("not picked", False, id="unpicked")
        yield SelectionList[str](("ticked", "a", True), ("unticked", "b", False), id="list")


async def test_state_shows_without_colour(monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = Toggles()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        rendered = {
            w.id: "".join(s.text for s in w.render_line(0))
            for w in app.query("Checkbox, RadioButton").results()
        }
        assert "X" in rendered["on"] and "X" not in rendered["off"]
        assert "●" in rendered["picked"] and "●" not in rendered["unpicked"]
        lines = [
            "".join(s.text for s in app.query_one("#list", SelectionList).render_line(y))
            for y in range(2)
        ]
        ticked = next(line for line in lines if "unticked" not in line)
        unticked = next(line for line in lines if "unticked" in line)
        assert "X" in ticked and "X" not in unticked
        app.query_one("#off", Checkbox).value = True
        await pilot.pause()
        assert "X" in "".join(s.text for s in app.query_one("#off", Checkbox).render_line(0))
