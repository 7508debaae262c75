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
from .listkeys import ListPane
from .messages import DetailRequested, RerunChecks
from .safe import safe_text, show_text

CHECK_COLUMNS = (("status", "Status"), ("id", "Check"), ("summary", "Summary"), ("remedy", "Remedy"))


class ChecksPane(ListPane):
    title = "Checks"
    COLUMNS = CHECK_COLUMNS
    PRIORITY = ("status", "id", "summary", "remedy")
    NOUN = "checks"
    BINDINGS = [Binding("R", "rerun", "Re-run")]  # r reverses, as on every list

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: dict[str, CheckResult] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="checks-status")
        yield self.filter_box()
        table = DataTable(id="checks-table", cursor_type="row", zebra_stripes=True)
        for key, label in CHECK_COLUMNS:
            table.add_column(label, key=key)
        yield table

    def action_rerun(self) -> None:
        self.post_message(RerunChecks())

    def render_view(self, state: LiveView, now: float) -> None:
        self.results = {c.id: c for c in state.checks}
        rows = [(c.id, (fmt.status_word(c.status), safe_text(c.id, 28), safe_text(fmt.brief(c.summary, 60), None),
                        safe_text(fmt.brief(c.remedy, 50), None)))
                for c in state.checks]
        self.show_rows(self.query_one("#checks-table", DataTable), rows)
        status = Text(end="")
        if state.checks_pending:
            status.append("running checks… ", style="bold")
        if state.checks:
            status.append("overall ")
            status.append(fmt.status_word(overall_status([c.status for c in state.checks])))
            status.append(f" {len(state.checks)} checks, {fmt.age(now - state.checks_at) if state.checks_at else ''}  (R re-runs, Enter: remedy and evidence)  ")
        elif not state.checks_pending:
            status.append("no checks run yet (R runs them)", style="dim")
        status.append_text(self.list_hint())
        show_text(self.query_one("#checks-status", Static), status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        result = self.results.get(event.row_key.value or "")
        if result is not None:
            self.post_message(DetailRequested(f"Check {result.id}", check_sections(result)))


def check_sections(result: CheckResult) -> list[tuple[str, Text]]:
    fields: list[tuple[str, Text | str]] = [("Status", fmt.status_word(result.status)), ("Check", safe_text(result.id, None)),
                                            ("Summary", safe_text(result.summary, None)),
                                            ("Took", f"{result.elapsed_ms:.0f} ms")]
    remedy = safe_text(result.remedy, None, multiline=True) if result.remedy else Text("nothing to do", style="dim")
    evidence = safe_text(fmt.readable(result.evidence), None, multiline=True) if result.evidence else Text("(none)")
    return [("Check", field_lines(fields)), ("Remedy", remedy), ("Evidence", evidence)]
