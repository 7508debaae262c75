"""Screen 5, Checks: the diagnose checks on the live session's merged state, with their evidence."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.live_state import LiveView
from console.model import CheckResult, overall_status

from . import format as fmt
from .format import field_lines
from .messages import DetailRequested, RerunChecks
from .rows import Pane
from .safe import safe_text, show_text
from .tablediff import sync_table

CHECK_COLUMNS = (("status", "Status"), ("id", "Check"), ("summary", "Summary"), ("remedy", "Remedy"))


class ChecksPane(Pane):
    title = "Checks"
    BINDINGS = [Binding("r", "rerun", "Re-run")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: dict[str, CheckResult] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="checks-status")
        table = DataTable(id="checks-table", cursor_type="row", zebra_stripes=True)
        for key, label in CHECK_COLUMNS:
            table.add_column(label, key=key)
        yield table

    def action_rerun(self) -> None:
        self.post_message(RerunChecks())

    def render_view(self, state: LiveView, now: float) -> None:
        self.results = {c.id: c for c in state.checks}
        rows = [(c.id, (fmt.status_word(c.status), safe_text(c.id, 28), safe_text(c.summary, 60), safe_text(c.remedy, 50)))
                for c in state.checks]
        sync_table(self.query_one("#checks-table", DataTable), rows)
        status = Text(end="")
        if state.checks_pending:
            status.append("running checks… ", style="bold")
        if state.checks:
            status.append("overall ")
            status.append(fmt.status_word(overall_status([c.status for c in state.checks])))
            status.append(f" {len(state.checks)} checks, {fmt.age(now - state.checks_at) if state.checks_at else ''}  (r re-runs, Enter for evidence)")
        elif not state.checks_pending:
            status.append("no checks run yet (r runs them)", style="dim")
        show_text(self.query_one("#checks-status", Static), status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        result = self.results.get(event.row_key.value or "")
        if result is not None:
            self.post_message(DetailRequested(f"Check {result.id}", check_sections(result)))


def check_sections(result: CheckResult) -> list[tuple[str, Text]]:
    fields: list[tuple[str, Text | str]] = [("Status", fmt.status_word(result.status)), ("Check", safe_text(result.id, None)),
                                            ("Summary", safe_text(result.summary, None)),
                                            ("Remedy", safe_text(result.remedy or "-", None)),
                                            ("Took", f"{result.elapsed_ms:.0f} ms")]
    evidence = field_lines([(str(k), safe_text(_plain(v), None, multiline=True)) for k, v in result.evidence.items()]) \
        if result.evidence else Text("(none)")
    return [("Check", field_lines(fields)), ("Evidence", evidence)]


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


