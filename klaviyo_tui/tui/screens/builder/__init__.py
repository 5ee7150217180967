"""The export builder: a screen that orchestrates four tab widgets (see screen.py).

`ExportBuilderScreen` is imported from here; the tabs live in list_tab, source_tab (with
filter_field), columns_tab and check_tab; form reads them back; report and fields are pure.
"""

from klaviyo_tui.tui.screens.builder.screen import ExportBuilderScreen

__all__ = ["ExportBuilderScreen"]
