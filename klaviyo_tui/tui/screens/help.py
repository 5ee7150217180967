"""`?`: how the app works and the keys on each screen."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Markdown

HELP = """\
## klaviyo-tui

Sends customer rows from files or databases to a **Klaviyo list**, and confirms every row.

1. **Connection** (`c` on Home): a Klaviyo account, its private key (kept in the OS keyring,
   or set `KLAVIYO_API_KEY`), and your data privacy acknowledgement.
2. **Export** (`n`): a list, a source (file or SQL) with an optional filter, the columns to send,
   and how it syncs (incremental, mirror removals, subscribe with consent, verification).
   **Save** keeps it for later; **Save and run** starts it at once.
3. **Run** (`r`): a live view; it keeps going if you leave it. `c` cancels (resumable).
   `d` on Home is a dry run: what a run would add, update and remove, sending nothing.
4. **History** (`h`): every run, why rows were rejected, rejects as CSV, retry, resume.

| Where | Keys |
|---|---|
| Everywhere | `?` help · `ctrl+p` command palette · `escape` back · `ctrl+q` quit |
| Home | `c` connection · `n` export · `h` history |
| Home, on a row | `r` run · `d` dry run · `e`/`enter` edit · `x` remove |
| Export | `F6`/`F5` next/previous tab · `ctrl+s` save · `escape` leave (asks if unsaved) |
| Run | `c` cancel · `u` resume · `o` rejects · `a` allow refused removals · `h` history |
| History | `enter` details · `s` sort · `f` filter |
| Run details | `w` write rejects CSV · `t` retry failed rows · `u` resume |

Headless: `klaviyo-tui run EXPORT` (cron: `klaviyo-tui run --due`).
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 100%; max-width: 96; height: 100%; max-height: 40;
        border: thick $primary; background: $surface;
    }
    HelpScreen VerticalScroll { height: 1fr; }
    HelpScreen Button { dock: bottom; width: 100%; }
    """
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
        # the Close button has the focus (it shows); these keys scroll the text
        Binding("up,k", "scroll('scroll_up')", show=False),
        Binding("down,j", "scroll('scroll_down')", show=False),
        Binding("pageup", "scroll('scroll_page_up')", show=False),
        Binding("pagedown", "scroll('scroll_page_down')", show=False),
        Binding("home", "scroll('scroll_home')", show=False),
        Binding("end", "scroll('scroll_end')", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(can_focus=False):
                yield Markdown(HELP)
            yield Button("Close", id="close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def action_scroll(self, method: str) -> None:
        getattr(self.query_one(VerticalScroll), method)(animate=False)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
