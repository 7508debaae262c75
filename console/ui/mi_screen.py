"""Screen 6, MI: one OpenSIPS MI command at a time, its answer as a tree."""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from console.mi_params import EXAMPLES
from console.live_state import LiveView

from .messages import MiSubmitted
from .rows import Pane
from .safe import safe_text, show_text

TREE_NODE_LIMIT = 5000  # a 100k ul_dump as a Tree would freeze the UI


class MiPane(Pane):
    title = "MI"

    def compose(self) -> ComposeResult:
        yield Input(placeholder="MI command, e.g. " + "  |  ".join(EXAMPLES),
                    id="mi-input")
        yield Static(id="mi-status")
        yield Tree(Text("result"), id="mi-result")

    def focus_main(self) -> None:
        self.query_one("#mi-input", Input).focus()

    def render_view(self, state: LiveView, now: float) -> None:
        pass  # MI results only change when the operator runs a command

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "mi-input":
            event.stop()
            self.post_message(MiSubmitted(event.value))

    def set_commands(self, names: Iterable[str]) -> None:
        """The MI commands the completion offers."""
        self.query_one("#mi-input", Input).suggester = SuggestFromList(sorted(set(names)), case_sensitive=False)

    def show_status(self, text: Text) -> None:
        show_text(self.query_one("#mi-status", Static), text)

    def show_result(self, method: str, result: Any) -> None:
        tree = self.query_one("#mi-result", Tree)
        tree.clear()
        tree.root.set_label(safe_text(method, 60, style="bold"))
        budget = [TREE_NODE_LIMIT]
        add_tree_nodes(tree.root, result, budget)
        tree.root.expand()
        for child in tree.root.children:
            child.expand()
        if budget[0] <= 0:
            tree.root.add_leaf(Text(f"… truncated at {TREE_NODE_LIMIT} nodes; use `opsconsole mi` for the full answer", style="bold"))


def add_tree_nodes(node: TreeNode, value: Any, budget: list[int], name: str | None = None) -> None:
    """JSON → Tree: dicts and lists become branches, scalars leaves ('key: value')."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    label = Text(end="")
    if name is not None:
        label.append(safe_text(name, 60, style="bold"))
    if isinstance(value, dict):
        label.append(f" {{{len(value)}}}", style="dim")
        branch = node.add(label) if name is not None else node
        for key, item in value.items():
            add_tree_nodes(branch, item, budget, str(key))
    elif isinstance(value, list):
        label.append(f" [{len(value)}]", style="dim")
        branch = node.add(label) if name is not None else node
        for position, item in enumerate(value):
            add_tree_nodes(branch, item, budget, f"[{position}]")
    else:
        if name is not None:
            label.append(": ")
        label.append(safe_text("null" if value is None else value, 200))
        node.add_leaf(label)
