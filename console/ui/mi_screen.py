"""Screen 6, MI: one OpenSIPS MI command at a time, its answer as a tree.

Each branch says what it holds (`[0] AOR 1001 · 1 contact`, not `[0] {19}`), and the answer is a
list like any other: `/` filters it (a node stays when it or something under it matches), `s`
sorts each list's items by their summary, `r` reverses them.  Esc closes the innermost thing
(the command line, then the filter) and never leaves the screen."""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from console.mi_params import EXAMPLES
from console.live_state import LiveView

from .listkeys import LIST_KEYS
from .messages import MiSubmitted
from .rows import Pane
from .safe import safe_text, show_text

TREE_NODE_LIMIT = 5000  # a 100k ul_dump as a Tree would freeze the UI
EXPAND_LINES = 300  # the answer is opened breadth first up to this many rows
# The fields that name an MI item, best first (ul_dump, dlg_list, get_statistics, which, ...).
NAME_FIELDS = ("name", "AOR", "Contact", "callid", "ID", "id", "Address", "URI", "uri", "state", "Socket",
               "value", "Status")
SUMMARY_FIELDS = 3


class MiPane(Pane):
    title = "MI"
    BINDINGS = LIST_KEYS  # the answer is a tree, but it filters, sorts and reverses like every list

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: tuple[str, Any] | None = None
        self.filter_text = ""
        self.sort = False  # list items by their summary
        self.reverse = False

    def compose(self) -> ComposeResult:
        yield Input(placeholder="MI command, e.g. " + "  |  ".join(EXAMPLES),
                    id="mi-input")
        yield Static(id="mi-status")
        yield Input(placeholder="filter the answer: any key or value (Enter keeps, Esc clears)",
                    id="mi-filter", classes="hidden")
        yield Tree(Text("result"), id="mi-result")

    def focus_main(self) -> None:
        self.query_one("#mi-input", Input).focus()

    def render_view(self, state: LiveView, now: float) -> None:
        pass  # MI results only change when the operator runs a command

    # ------------------------------------------------------------------ keys

    def action_close_innermost(self) -> None:
        """Esc: the command line first (to the answer), then the filter; nothing more."""
        box = self.query_one("#mi-filter", Input)
        if self.query_one("#mi-input", Input).has_focus:
            self.query_one("#mi-result", Tree).focus()
        elif not box.has_class("hidden") or self.filter_text:
            box.value = ""
            box.add_class("hidden")
            self.filter_text = ""
            self.query_one("#mi-result", Tree).focus()
            self._show()

    def action_open_filter(self) -> None:
        box = self.query_one("#mi-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_cycle_sort(self) -> None:
        self.sort = not self.sort
        self._show()

    def action_reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self._show()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "mi-filter":
            event.stop()
            self.filter_text = event.value
            self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "mi-input":
            event.stop()
            self.post_message(MiSubmitted(event.value))
        elif event.input.id == "mi-filter":
            event.stop()
            if not self.filter_text:
                event.input.add_class("hidden")
            self.query_one("#mi-result", Tree).focus()

    # ------------------------------------------------------------------ the answer

    def set_commands(self, names: Iterable[str]) -> None:
        """The MI commands the completion offers."""
        self.query_one("#mi-input", Input).suggester = SuggestFromList(sorted(set(names)), case_sensitive=False)

    def show_status(self, text: Text) -> None:
        show_text(self.query_one("#mi-status", Static), text)

    def show_result(self, method: str, result: Any) -> None:
        self.result = (method, result)
        self._show()

    def _show(self) -> None:
        if self.result is None:
            return
        method, result = self.result
        tree = self.query_one("#mi-result", Tree)
        tree.clear()
        label = safe_text(method, 60, style="bold")
        shaped = arranged(result, self.filter_text.lower().strip(), self.sort, self.reverse)
        if self.filter_text:
            label.append("  filter ")
            label.append_text(safe_text(self.filter_text, 30, style="bold"))
            if shaped is _NOTHING:
                label.append("  nothing matches", style="bold")
        if self.sort or self.reverse:
            label.append(f"  {'sorted' if self.sort else 'as answered'}{' reversed' if self.reverse else ''}",
                         style="dim")
        tree.root.set_label(label)
        budget = [TREE_NODE_LIMIT]
        if shaped is not _NOTHING:
            add_tree_nodes(tree.root, shaped, budget)
        expand(tree.root)
        if budget[0] <= 0:
            tree.root.add_leaf(Text(f"… truncated at {TREE_NODE_LIMIT} nodes; use `opsconsole mi` for the full answer", style="bold"))


def expand(root: TreeNode, lines: int = EXPAND_LINES) -> None:
    """Open the answer breadth first while it stays within `lines` rows: the items of a list are
    seen (with their summaries), not one collapsed `[0]`."""
    root.expand()
    visible, queue = len(root.children), [root]
    while queue:
        for child in queue.pop(0).children:
            if child.allow_expand and visible + len(child.children) <= lines:
                child.expand()
                visible += len(child.children)
                queue.append(child)


_NOTHING = object()  # nothing of the answer matches the filter


def arranged(value: Any, needle: str, sort: bool, reverse: bool) -> Any:
    """The answer as shown: only what matches `needle` (with what holds it), lists sorted and/or
    reversed; `_NOTHING` when nothing matches."""
    if needle and _matches(value, needle):
        needle = ""  # a matching leaf or a branch whose summary matches: all of it
    if isinstance(value, dict):
        items = {k: v for k, v in ((k, arranged(v, "" if needle in str(k).lower() else needle, sort, reverse))
                                   for k, v in value.items()) if v is not _NOTHING}
        return items if items or not needle else _NOTHING
    if isinstance(value, list):
        kept = [item for item in (arranged(v, needle, sort, reverse) for v in value) if item is not _NOTHING]
        if sort:
            kept.sort(key=lambda item: summary(item).lower())
        if reverse:
            kept.reverse()
        return kept if kept or not needle else _NOTHING
    return _NOTHING if needle else value


def _matches(value: Any, needle: str) -> bool:
    """A scalar whose text matches, or a branch whose summary does."""
    if isinstance(value, (dict, list)):
        return needle in summary(value).lower()
    return needle in scalar(value).lower()


def scalar(value: Any) -> str:
    return "null" if value is None else str(value)


def summary(value: Any) -> str:
    """What a branch holds, in a few words: its naming fields, then its counts."""
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if not isinstance(value, dict):
        return scalar(value)
    named = [key for key in NAME_FIELDS if key in value and not isinstance(value[key], (dict, list))]
    others = [key for key, item in value.items() if not isinstance(item, (dict, list)) and key not in named]
    parts = [f"{key} {scalar(value[key])}" for key in (named + others)[:SUMMARY_FIELDS]]
    parts += [f"{len(item)} {key}" for key, item in value.items() if isinstance(item, list)][:2]
    return " · ".join(parts) if parts else f"{len(value)} fields"


def add_tree_nodes(node: TreeNode, value: Any, budget: list[int], name: str | None = None) -> None:
    """JSON → Tree: dicts and lists become branches labelled with a summary, scalars leaves
    ('key: value')."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    label = Text(end="")
    if name is not None:
        label.append(safe_text(name, 60, style="bold"))
    if isinstance(value, (dict, list)):
        label.append("  ")
        label.append_text(safe_text(summary(value), 100, style="dim"))
        branch = node.add(label) if name is not None else node
        items = value.items() if isinstance(value, dict) else ((f"[{n}]", item) for n, item in enumerate(value))
        for key, item in items:
            add_tree_nodes(branch, item, budget, str(key))
    else:
        if name is not None:
            label.append(": ")
        label.append(safe_text(scalar(value), 200))
        node.add_leaf(label)
