"""What `opsconsole exporter` says about one node: Prometheus samples from its live session's view.

Pure: `node_samples(spec, view, ...)` is a function of the LiveView (and of what this node last knew
for sure, `NodeMemory`), computed once per poll of that node; a scrape only reads the samples the
last poll left (console.exporter).  Unknown is no sample, never a zero: a list never fetched, a
failed source or a part this platform lacks yields nothing (the scrape of an unknown figure
finds no series, which `absent()` / `opsconsole_up` alerts see).

Every metric carries `target` (the node's name; "default" for the unnamed single target).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from .model import DIALOG_STATES, QualityState, Status, call_quality
from .targets import TargetSpec

# name -> (help, label names after `target`); every metric is a gauge
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opsconsole_up": ("1 when the node's OpenSIPS MI answered the latest poll, 0 when it did not", ()),
    "opsconsole_exporter_failed": ("1 when the exporter could not turn the node's state into metrics (a bug: report it)",
                                   ()),
    "opsconsole_target_info": ("The node's labels from [[targets]], each a label of its own (value 1)", ()),
    "opsconsole_source_up": ("1 when the source answered the latest poll", ("source",)),
    "opsconsole_source_poll_seconds": ("How long the source took in the latest poll", ("source",)),
    "opsconsole_last_poll_timestamp_seconds": ("When the latest poll of the node completed (epoch s)", ()),
    "opsconsole_poll_age_seconds": ("Seconds since the latest poll of the node, at scrape time", ()),
    "opsconsole_check_status": ("Check status: 0 ok (or skip), 1 warn, 2 fail, 3 unknown", ("check",)),
    "opsconsole_checks_timestamp_seconds": ("When the checks last ran on the node (epoch s)", ()),
    "opsconsole_opensips_info": ("OpenSIPS version of the node (value 1)", ("version",)),
    "opsconsole_opensips_uptime_seconds": ("OpenSIPS uptime", ()),
    "opsconsole_opensips_load_percent": ("OpenSIPS core load", ()),
    "opsconsole_opensips_shm_percent": ("OpenSIPS shared memory in use", ()),
    "opsconsole_contacts_registered": ("Registered contacts (usrloc statistics)", ()),
    "opsconsole_contacts": ("Contacts of the last complete contact list, by transport", ("transport",)),
    "opsconsole_contacts_ws": ("WebSocket contacts (ws/wss transport or WS branch flag) of the last complete list", ()),
    "opsconsole_contacts_list_age_seconds": ("Age of the contact list the transport counts come from", ()),
    "opsconsole_dialogs_active": ("Active dialogs (dialog statistics)", ()),
    "opsconsole_dialogs_early": ("Early dialogs (dialog statistics)", ()),
    "opsconsole_dialogs": ("Dialogs of the last dialog list, by state", ("state",)),
    "opsconsole_dialogs_list_age_seconds": ("Age of the dialog list the state counts come from", ()),
    "opsconsole_calls_without_media": ("Confirmed dialogs without an RTPengine session (last complete match)", ()),
    "opsconsole_media_without_dialog": ("RTPengine sessions without an OpenSIPS dialog (last complete match)", ()),
    "opsconsole_calls_match_timestamp_seconds": ("When dialogs and media sessions were last matched, both current", ()),
    "opsconsole_media_sessions": ("RTPengine sessions", ()),
    "opsconsole_ports_used": ("RTPengine ports in use, per interface", ("interface", "address")),
    "opsconsole_ports_total": ("RTPengine ports available, per interface", ("interface", "address")),
    "opsconsole_rtpengine_engine_enabled": ("1 when OpenSIPS has the engine of the set enabled (rtpengine_show), 0 disabled",
                                            ("set", "engine")),
    "opsconsole_rtpengine_engine_weight": ("The engine's weight in its set (rtpengine_show)", ("set", "engine")),
    "opsconsole_rtpengine_engine_answers": ("1 when the engine answers an ng ping, 0 when not (asked by opsconsole)",
                                            ("set", "engine")),
    "opsconsole_rtpengine_engine_ping_seconds": ("The engine's ng ping time", ("set", "engine")),
    "opsconsole_rtpengine_set_enabled_engines": ("Engines of the set OpenSIPS has enabled (0: the set cannot relay)",
                                                 ("set",)),
    "opsconsole_cluster_node_link_up": ("Clusterer link to another node: 1 Up, 0 Probe or Down", ("cluster", "node")),
    "opsconsole_sharing_tag_active": ("Clusterer sharing tag on this node: 1 active, 0 backup", ("cluster", "tag")),
    "opsconsole_calls_quality": ("Calls by media quality state (RTPengine's view; queried calls only)", ("state",)),
    "opsconsole_mos_average": ("RTPengine's average MOS over its samples", ()),
    "opsconsole_mos_samples": ("RTPengine's MOS samples", ()),
    "opsconsole_jitter_average_ms": ("RTPengine's average jitter", ()),
    "opsconsole_loss_average_percent": ("RTPengine's average packet loss", ()),
    "opsconsole_interface_mos": ("Average MOS per RTPengine interface", ("interface", "address")),
}
CHECK_VALUES = {Status.OK: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2, Status.UNKNOWN: 3}
SIGNALLING_SOURCE = "opensips"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[str, ...]  # values of METRICS[name]'s label names, `target` not included
    value: float


@dataclass
class NodeMemory:
    """What the node last knew for sure, kept between polls where it is not current (a dialog list older
    than the session list matches nothing): the last complete match of dialogs with media."""

    without_media: int | None = None
    without_dialog: int | None = None
    matched_at: float | None = None


def target_label(spec: TargetSpec) -> str:
    return spec.name or "default"


def node_samples(spec: TargetSpec, view: Any, memory: NodeMemory, *, mos_poor: float = 3.5,
                 silent_after_s: float = 10.0, now: float | None = None) -> list[Sample]:
    """Every sample of one node from its live view (nothing before its first poll but its info)."""
    out = [Sample("opsconsole_target_info", (), 1)]  # the exporter adds the [[targets]] labels
    latest = view.latest
    if latest is None:
        return out
    now = latest.collected_at if now is None else now
    for part in (_sources(latest), _checks(view), _signalling(view), _contacts(view, now), _dialogs(view, now),
                 _join(view, memory), _media(view), _relays(view), _topology(latest),
                 _quality(view, now, mos_poor, silent_after_s)):
        out.extend(part)
    return out


def _sources(latest) -> Iterable[Sample]:
    sources = latest.sources
    signalling = sources.get(SIGNALLING_SOURCE)
    if signalling is not None:
        yield Sample("opsconsole_up", (), 1 if signalling.ok else 0)
    yield Sample("opsconsole_last_poll_timestamp_seconds", (), latest.collected_at)
    for name, status in sorted(sources.items()):
        yield Sample("opsconsole_source_up", (name,), 1 if status.ok else 0)
        yield Sample("opsconsole_source_poll_seconds", (name,), status.elapsed_ms / 1000.0)


def _checks(view) -> Iterable[Sample]:
    for result in view.checks:
        yield Sample("opsconsole_check_status", (result.id,), CHECK_VALUES.get(result.status, 3))
    if view.checks_at is not None:
        yield Sample("opsconsole_checks_timestamp_seconds", (), view.checks_at)


def _signalling(view) -> Iterable[Sample]:
    """The counters of every poll; from the latest poll only (a failed one says nothing, up says 0)."""
    signalling = view.latest.signalling
    if signalling is None:
        return
    ov = signalling.overview
    if ov.version:
        yield Sample("opsconsole_opensips_info", (ov.version,), 1)
    for name, value in (("opsconsole_opensips_uptime_seconds", ov.uptime_s), ("opsconsole_opensips_load_percent", ov.load),
                        ("opsconsole_opensips_shm_percent", ov.shm_percent),
                        ("opsconsole_contacts_registered", ov.registered_contacts),
                        ("opsconsole_dialogs_active", ov.active_dialogs), ("opsconsole_dialogs_early", ov.early_dialogs)):
        if value is not None:
            yield Sample(name, (), float(value))


def _contacts(view, now: float) -> Iterable[Sample]:
    """By transport from the last contact list, only when it is all of what is registered (a partial
    list's counts would read as fewer contacts)."""
    if view.contacts is None or view.transport_counts_partial():
        return
    counts = view.transport_counts()
    for transport, count in sorted(counts.items()):
        yield Sample("opsconsole_contacts", (transport,), count)
    yield Sample("opsconsole_contacts_ws", (), sum(1 for c in view.contacts if c.ws or c.transport in ("ws", "wss")))
    if view.contacts_at is not None:
        yield Sample("opsconsole_contacts_list_age_seconds", (), max(0.0, now - view.contacts_at))


def _dialogs(view, now: float) -> Iterable[Sample]:
    if view.dialogs is None:
        return
    if view.dialogs_at is not None:
        yield Sample("opsconsole_dialogs_list_age_seconds", (), max(0.0, now - view.dialogs_at))
    states = Counter(DIALOG_STATES.get(d.state, f"state {d.state}") for d in view.dialogs)
    for state in DIALOG_STATES.values():
        yield Sample("opsconsole_dialogs", (state,), states.pop(state, 0))
    for state, count in sorted(states.items()):
        yield Sample("opsconsole_dialogs", (state,), count)


def _join(view, memory: NodeMemory) -> Iterable[Sample]:
    """Calls without media / media without dialog, counted only when both lists are of one poll and
    complete (as the rtpengine.sessions check judges); between such polls the last count, with its time."""
    latest = view.latest
    media, dialogs = view.media, view.dialogs
    current = (dialogs is not None and media is not None and latest.media is not None
               and "dialogs" not in view.stale and (media.sessions_total is None or media.sessions_total <= len(media.sessions)))
    if current:
        with_media = {s.callid for s in media.sessions}
        with_dialog = {d.callid for d in dialogs}
        memory.without_media = sum(1 for d in dialogs if d.state == 4 and d.callid not in with_media)
        memory.without_dialog = sum(1 for s in media.sessions if not s.deleted and s.callid not in with_dialog)
        memory.matched_at = latest.collected_at
    if memory.matched_at is None:
        return
    yield Sample("opsconsole_calls_without_media", (), memory.without_media)
    yield Sample("opsconsole_media_without_dialog", (), memory.without_dialog)
    yield Sample("opsconsole_calls_match_timestamp_seconds", (), memory.matched_at)


def _media(view) -> Iterable[Sample]:
    media = view.latest.media
    if media is None:
        return
    total = media.totals.total_sessions
    yield Sample("opsconsole_media_sessions", (), total if total is not None else len(media.sessions))
    for iface in media.ports.interfaces:
        yield Sample("opsconsole_ports_used", (iface.name, iface.address), iface.used)
        yield Sample("opsconsole_ports_total", (iface.name, iface.address), iface.total)


def _relays(view) -> Iterable[Sample]:
    """The RTPengine sets as OpenSIPS sees them (rtpengine_show, in every poll's cheap calls); the
    topology part's sets instead when the node has them (the same list, joined with each engine's health)."""
    signalling = view.latest.signalling
    if signalling is None or _topology_sets(view.latest) is not None:
        return
    for relay in signalling.relays:
        labels = (str(relay.set_id), relay.url)
        yield Sample("opsconsole_rtpengine_engine_enabled", labels, 0 if relay.disabled else 1)
        yield Sample("opsconsole_rtpengine_engine_weight", labels, relay.weight)


def _topology_part(latest) -> Any:
    return latest.parts.get("topology") if latest.parts else None


def _topology_sets(latest) -> Any:
    return getattr(_topology_part(latest), "sets", None)


def _topology(latest) -> Iterable[Sample]:
    """RTPengine sets joined with each engine's own health, and the clusterer (links, sharing tags), from
    the opensips plugin's "topology" part (console/model/topology.py) when the node has it."""
    part = _topology_part(latest)
    if part is None:
        return
    for rtp_set in getattr(part, "sets", None) or ():
        set_id = str(rtp_set.set_id)
        enabled = 0
        for engine in rtp_set.engines:
            labels = (set_id, engine.url)
            enabled += 0 if engine.disabled else 1
            yield Sample("opsconsole_rtpengine_engine_enabled", labels, 0 if engine.disabled else 1)
            yield Sample("opsconsole_rtpengine_engine_weight", labels, engine.weight)
            health = getattr(engine, "health", None)
            if health is not None and health.answered is not None:
                yield Sample("opsconsole_rtpengine_engine_answers", labels, 1 if health.answered else 0)
                if health.ping_ms is not None:
                    yield Sample("opsconsole_rtpengine_engine_ping_seconds", labels, health.ping_ms / 1000.0)
        yield Sample("opsconsole_rtpengine_set_enabled_engines", (set_id,), enabled)
    cluster = getattr(part, "cluster", None)
    for node in getattr(cluster, "nodes", None) or ():
        if node.link_state:
            yield Sample("opsconsole_cluster_node_link_up", (str(node.cluster_id), str(node.node_id)),
                         1 if node.link_state.lower() == "up" else 0)
    for tag in getattr(cluster, "shtags", None) or ():
        if tag.state.lower() in ("active", "backup"):
            yield Sample("opsconsole_sharing_tag_active", (str(tag.cluster_id), tag.tag),
                         1 if tag.state.lower() == "active" else 0)


def _quality(view, now: float, mos_poor: float, silent_after_s: float) -> Iterable[Sample]:
    media = view.media
    if media is None:
        return
    totals = media.totals
    for name, value in (("opsconsole_mos_average", totals.mos_average), ("opsconsole_mos_samples", totals.mos_samples),
                        ("opsconsole_jitter_average_ms", totals.jitter_average_ms),
                        ("opsconsole_loss_average_percent", totals.loss_average_pct)):
        if value is not None:
            yield Sample(name, (), float(value))
    for iface in media.interface_quality or ():
        if iface.mos is not None:
            yield Sample("opsconsole_interface_mos", (iface.name, iface.address), iface.mos)
    if not any(call.media is not None and call.media.detailed for call in view.calls):
        return  # no call queried yet: every state would read 0
    judged = getattr(view, "qualities", None)  # the live session's verdicts (the checks' and the screens')
    if judged:
        states = Counter(judged[call.callid].state for call in view.calls
                         if call.media is not None and call.callid in judged)
    else:
        states = Counter(call_quality(call, now, mos_poor=mos_poor, silent_after_s=silent_after_s).state
                         for call in view.calls if call.media is not None)
    for state in QualityState:
        yield Sample("opsconsole_calls_quality", (state.value,), states.get(state, 0))
