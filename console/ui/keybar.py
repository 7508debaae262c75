"""A one-line key bar: what Textual's Footer shows, as one Static.

Textual's Footer recomposes a widget per key on every focus change (styles,
layout, mount/unmount for ~10 widgets): 30-40 ms of each Esc, filter open /
close or screen switch.  This bar re-renders one Text, and only when the set
of shown keys actually changed.  Keys stay clickable (`@click` style meta).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

# (key, key as displayed, description, enabled)
KeyItem = tuple[str, str, str, bool]
PINNED = ("question_mark", "q")  # always shown, at the right: how to get help and how to leave


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    KeyBar > .keybar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .keybar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    KeyBar > .keybar--separator {
        color: $foreground 20%;
    }
    """
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--separator"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: tuple[KeyItem, ...] = ()
        self.palette: KeyItem | None = None
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of the last render: clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.call_after_refresh(self.bindings_changed, self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        keys, palette = self.current_keys()
        if (keys, palette) != (self.shown, self.palette):
            self.shown, self.palette = keys, palette
            self.refresh()

    def current_keys(self) -> tuple[tuple[KeyItem, ...], KeyItem | None]:
        """Shown bindings of the focused chain, one per action (first key wins); the palette key."""
        app = self.app
        items: list[KeyItem] = []
        actions: set[str] = set()
        palette: KeyItem | None = None
        for binding, enabled in ((b.binding, b.enabled) for b in self.screen.active_bindings.values()):
            if app.ENABLE_COMMAND_PALETTE and binding.key == app.COMMAND_PALETTE_BINDING:
                palette = (binding.key, app.get_key_display(binding), binding.description, enabled)
            elif binding.show and binding.action not in actions:
                actions.add(binding.action)
                items.append((binding.key, app.get_key_display(binding), binding.description, enabled))
        return tuple(items), palette

    def render(self) -> Text:
        """The keys from the left; at the right edge `?` Help and `q` Quit (never pushed off a
        narrow terminal) and the palette key (as Textual's Footer)."""
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        description_style = self.get_component_rich_style("keybar--description", partial=True)
        out = Text(end="", no_wrap=True, overflow="crop")
        spans: list[tuple[int, int, str]] = []
        right = Text(end="")
        right_keys: list[tuple[int, int, str]] = []  # spans within `right`
        for item in self.shown:
            if item[0] in PINNED:
                start = right.cell_len
                self._append(right, item, key_style, description_style)
                right_keys.append((start, right.cell_len, item[0]))
        if not right_keys and isinstance(self.screen.focused, Input):  # typing: ? and q are letters here
            start = right.cell_len
            self._append(right, ("escape", "Esc", "leave the input, then ? Help  q Quit", True), key_style,
                         description_style)
            right_keys.append((start, right.cell_len, "escape"))
        if self.palette is not None:
            _key, display, description, enabled = self.palette
            start = right.cell_len
            right.append("▏", self.get_component_rich_style("keybar--separator"))
            right.append(display, key_style + Style(dim=not enabled))
            right.append(f" {description} ", description_style + Style(dim=not enabled))
            right_keys.append((start, right.cell_len, self.palette[0]))
        room = self.size.width - right.cell_len
        for item in self.shown:
            if item[0] in PINNED:
                continue
            start = out.cell_len
            self._append(out, item, key_style, description_style)
            if out.cell_len > room:
                out.truncate(start)
                break
            spans.append((start, out.cell_len, item[0]))
        if right.cell_len:
            out.pad_right(max(0, room - out.cell_len))
            offset = out.cell_len
            spans.extend((offset + start, offset + end, key) for start, end, key in right_keys)
            out.append_text(right)
        self._spans = spans
        return out

    @staticmethod
    def _append(out: Text, item: KeyItem, key_style: Style, description_style: Style) -> None:
        _key, display, description, enabled = item
        dim = Style(dim=not enabled)
        out.append(f" {display} ", key_style + dim)
        if description:
            out.append(f"{description} ", description_style + dim)

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
