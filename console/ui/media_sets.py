"""RTPengine sets as OpenSIPS sees them, on the Media screen: set → engines with weight, OpenSIPS's state
(enabled / disabled by MI / disabled with its recheck), the engine's own answer, ping, sessions and ports.

`e` on an engine toggles it in OpenSIPS (`rtpengine_enable url=… enable=0|1`): refused unless the console
was started with --allow-write, then confirmed in a dialog and written through the service, which audits it
(the same path as the MI screen's writes).  Every cell from OpenSIPS or an engine is shown as plain text.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.live_state import LiveView
from console.model.topology import RtpEngineNode, Topology
from console.render.topology import engine_state, health_cells

from .safe import safe_text, show_text
from .screens import ConfirmScreen
from .tablediff import sync_table

COLUMNS = (("set", "Set"), ("engine", "Engine"), ("weight", "Weight"), ("opensips", "OpenSIPS"),
           ("answer", "Engine says"), ("ping", "Ping"), ("sessions", "Sessions"), ("ports", "Ports"))


def topology_of(state: LiveView) -> Topology | None:
    part = state.latest.parts.get("topology") if state.latest is not None else None
    return part if isinstance(part, Topology) else None


def engine_rows(topology: Topology) -> list[tuple[str, tuple]]:
    rows = []
    for engine in topology.engines:
        answer, ping, sessions, ports = health_cells(engine.health)
        answer_style = "bold red" if answer == "NO ANSWER" else ("bold yellow" if engine.disabled and
                                                                 answer == "answers" else "")
        rows.append((f"{engine.set_id}\x00{engine.url}", (
            Text(str(engine.set_id)), safe_text(engine.url, 40), Text(str(engine.weight), justify="right"),
            Text(engine_state(engine), style="bold" if engine.disabled else ""), Text(answer, style=answer_style),
            Text(ping, justify="right"), Text(sessions, justify="right"), Text(ports, justify="right"))))
    return rows


class MediaSets(Vertical):
    """Hidden until OpenSIPS reports RTPengine sets."""

    DEFAULT_CSS = """
    MediaSets { height: auto; display: none; }
    MediaSets #rtp-sets { height: auto; max-height: 8; }
    MediaSets #rtp-sets-status { height: auto; padding: 0 1; }
    """
    BINDINGS = [Binding("e", "toggle_engine", "Enable/disable engine")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engines: dict[str, RtpEngineNode] = {}
        self.target = ""
        self.note = Text("")  # the outcome of the last enable/disable, kept across polls

    def compose(self) -> ComposeResult:
        yield Static(id="rtp-sets-status")
        table = DataTable(id="rtp-sets", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table

    def render_view(self, state: LiveView) -> None:
        topology = topology_of(state)
        self.display = bool(topology is not None and topology.sets)
        if topology is None or not topology.sets:
            return
        self.target = topology.target
        self.engines = {f"{e.set_id}\x00{e.url}": e for e in topology.engines}
        sync_table(self.query_one("#rtp-sets", DataTable), engine_rows(topology))
        enabled = sum(len(s.enabled) for s in topology.sets)
        line = Text(f"RTPengine sets as OpenSIPS sees them: {len(topology.sets)} sets, {enabled} of "
                    f"{len(self.engines)} engines enabled", style="bold")
        if any(not s.enabled for s in topology.sets):
            line.append("  a set has no enabled engine", style="bold red")
        line.append("   e: enable/disable the engine (needs --allow-write)", style="dim")
        show_text(self.query_one("#rtp-sets-status", Static), line + Text("\n") + self.note if self.note else line)

    def selected(self) -> RtpEngineNode | None:
        table = self.query_one("#rtp-sets", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.engines.get(key or "")

    def action_toggle_engine(self) -> None:
        engine = self.selected()
        if engine is None:
            return
        params = {"url": engine.url, "enable": "1" if engine.disabled else "0"}
        if not getattr(self.app, "allow_write", False):
            self._say(Text.assemble(("REFUSED ", "bold reverse red"), "rtpengine_enable changes the platform; "
                                    "start opsconsole with --allow-write to permit it"))
            return
        verb = "Enable" if engine.disabled else "Disable"
        question = Text.assemble((f"{verb} RTPengine ", "bold"), safe_text(engine.url, 80, style="bold"),
                                 f" (set {engine.set_id}) in OpenSIPS", "\non ", safe_text(self.target, 80),
                                 "?\nrtpengine_enable changes the live platform and is audit-logged.")

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._enable(params)
            else:
                self._say(Text("cancelled: rtpengine_enable"))

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(exclusive=True, group="rtpengine_enable")
    async def _enable(self, params: dict[str, str]) -> None:
        self._say(Text.assemble("running rtpengine_enable ", safe_text(params["url"], 80), "…"))
        try:
            await self.app.service.mi("rtpengine_enable", params, confirmed=True)
        except Exception as exc:  # an MI error or a refused audit log: said, never a crash
            self._say(Text.assemble(("FAIL ", "bold red"), safe_text(f"{type(exc).__name__}: {exc}", 200)))
            return
        word = "enabled" if params["enable"] == "1" else "disabled"
        self._say(Text.assemble(("OK ", "bold green"), safe_text(params["url"], 80), f" {word} in OpenSIPS "
                                "(the table shows it after the next poll)"))

    def _say(self, text: Text) -> None:
        self.note = text
        show_text(self.query_one("#rtp-sets-status", Static), text)
