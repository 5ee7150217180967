"""Checkboxes, radio buttons and selection lists whose state shows without colour.

Textual draws a ticked and an unticked box with the same character and tells them apart by
colour only, so under NO_COLOR (or on a monochrome terminal, or read as text) every box looks
ticked. These draw the mark only when on. Textual is pinned exactly (pyproject), because this
reads the toggle's `_button` and the list's rendered line.
"""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox as _Checkbox
from textual.widgets import RadioButton as _RadioButton
from textual.widgets import SelectionList as _SelectionList

OFF = " "
T = TypeVar("T")


class Checkbox(_Checkbox):
    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = type(self).BUTTON_INNER if self.value else OFF
        return super()._button


class RadioButton(_RadioButton):
    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = type(self).BUTTON_INNER if self.value else OFF
        return super()._button


class SelectionList(_SelectionList[T]):
    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        index = self.scroll_offset.y + y
        if index >= self.option_count or self.get_option_at_index(index).value in self.selected:
            return line
        segments = list(line)
        if len(segments) < 2:
            return line
        mark = segments[1]  # [left edge, mark, right edge, space, prompt...]
        segments[1] = Segment(OFF * len(mark.text), mark.style, mark.control)
        return Strip(segments, line.cell_length)
