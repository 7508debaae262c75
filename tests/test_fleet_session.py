"""The headless fleet (console/fleet.py, #16) against embedded demo nodes on ports from the OS: one row per
node from its own live session, the node on screen polls fully and the others only cheap calls, a dead
node is unknown (not zeros) with its error, subscribers hear every node, run() ends on close()."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from console.config import load_config
from console.errors import ConfigError
from console.fleet import FLEET_INTEREST, FleetSession, TargetSpec
from console.live import Interest
from support.faults import free_port

# what a node not on screen must not ask OpenSIPS after its first poll: a dump, a dialog list (3.4 and 4.0 names)
HEAVY_MI = {"ul_dump", "usrloc:dump", "dlg_list", "dialog:list", "dlg_list_ctx", "dialog:list_ctx"}
CHEAP_POLL_MI_MAX = 8  # uptime, statistics, rtpengine_show (+ the topology part's few small calls)


class Node:
    """A demo platform with a record of the MI methods it answered."""

    def __init__(self, name: str, demo) -> None:
        self.name, self.demo = name, demo
        self.asked: list[str] = []
        renderer = demo.server.renderer
        answer = renderer.answer

        def counting(request: dict):
            self.asked.append(str(request.get("method")))
            return answer(request)

        renderer.answer = counting

    def spec(self, **labels: str) -> TargetSpec:
        demo = self.demo
        return TargetSpec(self.name, mi_url=demo.mi_url, ng=(f"{demo.ng[0]}:{demo.ng[1]}",),
                          cli=(f"{demo.cli[0]}:{demo.cli[1]}",), labels=labels)


@contextlib.asynccontextmanager
async def demo_nodes(*names: str, size: int = 20):
    from opsconsole_demo import DemoPlatform

    async with contextlib.AsyncExitStack() as stack:
        nodes = []
        for n, name in enumerate(names):
            demo = await stack.enter_async_context(
                DemoPlatform(size=size + n, version=("3.4", "4.0")[n % 2], real_rtpengine=False, calls=2 + n, tick=None))
            nodes.append(Node(name, demo))
        yield nodes


def fleet_of(specs, **kwargs) -> FleetSession:
    config = load_config({"timeout": 0.5}, env={}, discover=False)
    return FleetSession(specs, config, **kwargs)


async def test_one_row_per_node_from_its_own_state():
    async with demo_nodes("par-1", "lon-1") as (par, lon):
        fleet = fleet_of([par.spec(site="par"), lon.spec(site="lon")], focus="par-1")
        try:
            rows = {row.name: row for row in await fleet.poll_once()}
        finally:
            await fleet.aclose()
    assert list(rows) == ["par-1", "lon-1"]
    for node, version in ((par, "3.4"), (lon, "4.0")):
        row, state = rows[node.name], node.demo.state
        assert row.version.startswith(version) and row.labels == {"site": node.name[:3]}
        assert row.contacts == state.contact_count and row.dialogs == len(state.dialogs)
        assert row.media_sessions == len(state.dialogs) and row.ports_used == 4 * len(state.dialogs)
        assert row.ports_total and row.uptime_s is not None and row.load_pct is not None and 0 < row.shm_pct < 100
        assert row.last_error is None and 0 <= row.age_s < 5
        assert row.worst_status in ("OK", "WARN", "FAIL", "UNKNOWN")
        view = fleet.session(node.name).view
        worst = [r.id for r in view.checks if r.status.value.upper() == row.worst_status]
        assert (row.worst_check in worst) if row.worst_status != "OK" else row.worst_check is None


async def test_a_dead_node_is_unknown_with_its_error_and_the_others_are_not_affected():
    async with demo_nodes("par-1") as (par,):
        dead = TargetSpec("gone", mi_url=f"http://127.0.0.1:{free_port()}/mi", ng=(f"127.0.0.1:{free_port()}",))
        fleet = fleet_of([par.spec(), dead])
        try:
            rows = {row.name: row for row in await fleet.poll_once()}
        finally:
            await fleet.aclose()
    gone = rows["gone"]
    assert (gone.version, gone.contacts, gone.dialogs, gone.media_sessions, gone.ports_used) == (None,) * 5
    assert "opensips" in gone.last_error and gone.worst_status == "FAIL" and gone.worst_check == "opensips.mi"
    assert rows["par-1"].contacts == par.demo.state.contact_count and rows["par-1"].last_error is None


async def test_the_node_on_screen_polls_fully_and_the_others_only_cheap_calls():
    async with demo_nodes("par-1", "lon-1") as (par, lon):
        fleet = fleet_of([par.spec(), lon.spec()], interval=1.0, background_interval=4.0, focus="par-1")
        try:
            assert fleet.session("par-1").interval == 1.0 and fleet.session("lon-1").interval == 4.0
            await fleet.poll_once()  # the first poll brings every list and runs the checks, on every node
            first = Counter(lon.asked)
            assert any(method in HEAVY_MI for method in first), first
            par.asked.clear()
            lon.asked.clear()
            fleet.session("par-1").set_interest(Interest(screen="registrations"))  # what the screen asks for
            await fleet.poll_once()
            assert lon.asked and not set(lon.asked) & HEAVY_MI and len(lon.asked) <= CHEAP_POLL_MI_MAX, lon.asked
            background = fleet.session("lon-1").last_options
            assert not (background.contacts or background.dialogs or background.host_facts)
            assert fleet.session("par-1").last_options.contacts  # the screen's list every poll (events keep it live)
            fleet.focus("lon-1")  # the operator opens the other node
            assert fleet.session("lon-1").interval == 1.0 and fleet.session("par-1").interval == 4.0
            assert fleet.session("par-1").interest == FLEET_INTEREST and fleet.focused == "lon-1"
            assert fleet.session("lon-1").interest == Interest()
        finally:
            await fleet.aclose()


async def test_subscribers_hear_every_node_and_a_failing_one_stops_nothing():
    async with demo_nodes("par-1", "lon-1") as (par, lon):
        fleet = fleet_of([par.spec(), lon.spec()])
        heard: list[tuple[str, int]] = []

        def broken(name, view):
            raise RuntimeError("a face's bug")

        fleet.subscribe(broken)
        unsubscribe = fleet.subscribe(lambda name, view: heard.append((name, view.polls)))
        try:
            await fleet.poll_once()
            unsubscribe()
            await fleet.poll_once()
            polls = {name: fleet.session(name).polls for name in fleet.names}
        finally:
            await fleet.aclose()
    assert sorted(heard) == [("lon-1", 1), ("par-1", 1)]
    assert polls == {"par-1": 2, "lon-1": 2}  # the failing subscriber stopped no poll
    assert "RuntimeError: a face's bug" in fleet.callback_error


async def test_run_polls_every_node_until_closed():
    async with demo_nodes("par-1", "lon-1") as (par, lon):
        fleet = fleet_of([par.spec(), lon.spec()], interval=0.2, background_interval=0.2)
        polled: set[str] = set()
        every_node = asyncio.Event()

        def heard(name, view):
            polled.add(name)
            if polled == {"par-1", "lon-1"}:
                every_node.set()

        fleet.subscribe(heard)
        runner = asyncio.ensure_future(fleet.run())
        try:
            await asyncio.wait_for(every_node.wait(), 20)
            fleet.close()
            await asyncio.wait_for(runner, 10)  # returns, no CancelledError out of run()
        finally:
            runner.cancel()
            await fleet.aclose()
    assert runner.done() and not runner.cancelled() and runner.exception() is None


def test_the_fleet_refuses_no_targets_and_twice_the_same_name():
    spec = TargetSpec("a", mi_url="http://127.0.0.1:1/mi")
    with pytest.raises(ConfigError, match="at least one target"):
        fleet_of([])
    with pytest.raises(ConfigError, match="must differ"):
        fleet_of([spec, spec])
    with pytest.raises(KeyError, match="no target 'b'"):
        fleet_of([spec]).session("b")
