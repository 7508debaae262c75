"""Diagnose checks for RTPengine and for OpenSIPS's view of it.

Checks that test reachability talk to the daemon themselves (a fresh ng
ping), so their verdict names exactly the address tried and the typed
error; the others read the collected snapshot.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import psutil

from console.config import parse_hostport
from console.errors import ConfigError, ConnectionRefused, OpsError, Timeout
from console.model import (Call, CallQuality, CheckResult, PortUsage, ProcessInfo, QualityState, Status, call_quality,
                           overall_status, threshold_status)
from console.plugins import CheckContext, CheckSpec

from . import parse
from .cli import CliClient
from .codec import LEGACY_HINT, LegacyListenerError
from .ng import NgClient

NG_REMEDY = "start rtpengine with --listen-ng=IP:PORT (Debian: listen-ng in /etc/rtpengine/rtpengine.conf) " \
            "and point opsconsole at it (--ng / [rtpengine] ng)"
PORTS_REMEDY = "widen --port-min/--port-max, or find what holds the ports (zombie sessions, long timeouts)"
ADDRESS_REMEDY = ("fix --interface: rtpengine can only bind addresses configured on this host "
                  "(use NAME/LOCAL!ADVERTISED behind NAT)")
MIN_PACKETS_FOR_RATIO = 1000
USERSPACE_WARN_SHARE = 0.5


def _budget(ctx: CheckContext, share: float = 0.75) -> float:
    """Time for this check's own I/O: less than the per-check timeout (config.timeout by
    default), so a dead peer yields our FAIL with the address, not a generic check timeout."""
    return max(0.2, ctx.config.timeout * share)


def _fmt(address: tuple[str, int] | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "(none)"


async def _ng_ping(address: tuple[str, int], timeout: float) -> OpsError | None:
    client = NgClient(*address, timeout=timeout, retries=1)
    try:
        await client.ping()
        return None
    except OpsError as exc:
        return exc
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- rtpengine.ng


async def check_ng(ctx: CheckContext) -> CheckResult:
    address = ctx.config.ng
    if address is None:
        return CheckResult("rtpengine.ng", Status.SKIP, "no rtpengine ng address configured", remedy=NG_REMEDY)
    error = await _ng_ping(address, _budget(ctx))
    evidence: dict[str, Any] = {"ng address": _fmt(address)}
    if error is None:
        return CheckResult("rtpengine.ng", Status.OK, f"rtpengine answers ng ping at {_fmt(address)}", evidence)
    evidence["error"] = str(error)
    if isinstance(error, LegacyListenerError):
        return CheckResult("rtpengine.ng", Status.FAIL, f"{_fmt(address)}: {LEGACY_HINT}", evidence,
                           remedy="use the --listen-ng address (not --listen-udp) in opsconsole and opensips.cfg")
    return CheckResult("rtpengine.ng", Status.FAIL, f"no ng answer from rtpengine at {_fmt(address)}: {error.message}",
                       evidence, remedy=NG_REMEDY)


# --------------------------------------------------------------------------- rtpengine.cli


async def check_cli(ctx: CheckContext) -> CheckResult:
    address = ctx.config.cli
    if address is None:
        return CheckResult("rtpengine.cli", Status.SKIP, "no rtpengine CLI address configured")
    try:
        counts = await CliClient(*address, timeout=_budget(ctx)).numsessions()
    except OpsError as exc:
        return CheckResult("rtpengine.cli", Status.FAIL, f"rtpengine CLI at {_fmt(address)} does not answer: "
                           f"{exc.message}", {"cli address": _fmt(address), "error": str(exc)},
                           remedy="start rtpengine with --listen-cli=IP:PORT and point opsconsole at it (--cli)")
    return CheckResult("rtpengine.cli", Status.OK, f"rtpengine CLI answers at {_fmt(address)}",
                       {"cli address": _fmt(address), "sessions": counts.get("sessions_total")})


# --------------------------------------------------------------------------- rtpengine.ports


async def _port_usage(ctx: CheckContext) -> PortUsage | None:
    media = ctx.snapshot.media
    if media is not None and media.ports.interfaces:
        return media.ports
    if ctx.config.cli:
        try:
            return parse.port_usage(await CliClient(*ctx.config.cli, timeout=_budget(ctx, 0.35)).interfaces())
        except OpsError:
            pass
    if ctx.config.ng:
        client = NgClient(*ctx.config.ng, timeout=_budget(ctx, 0.35))
        try:
            return parse.parse_statistics_ports(await client.statistics())
        except OpsError:
            pass
        finally:
            await client.aclose()
    return None


def local_addresses() -> set[str]:
    addresses = {"0.0.0.0", "::"}
    try:
        for entries in psutil.net_if_addrs().values():
            addresses.update(entry.address.split("%")[0] for entry in entries)
    except OSError:
        pass
    return addresses


async def check_ports(ctx: CheckContext) -> CheckResult:
    usage = await _port_usage(ctx)
    if usage is None or not usage.interfaces:
        return CheckResult("rtpengine.ports", Status.UNKNOWN, "rtpengine port usage unavailable (neither CLI "
                           "`list interfaces` nor ng statistics answered)")
    thresholds = ctx.config.thresholds
    local = local_addresses()
    status, problems, evidence = Status.OK, [], {}
    for iface in usage.interfaces:
        label = f"{iface.name} {iface.address}"
        evidence[label] = (f"{iface.used}/{iface.total} ports used ({iface.percent:.1f}%), range "
                           f"{iface.port_min}-{iface.port_max}, room for {iface.calls_left} more calls")
        if iface.address not in local:
            status = Status.FAIL
            problems.append(f"interface {label} is not an address of this host: rtpengine cannot bind media "
                            f"ports there (\"Cannot assign requested address\" / \"Ran out of ports\")")
        elif (level := threshold_status(iface.percent, thresholds.ports_warn, thresholds.ports_fail)) is not Status.OK:
            status = overall_status([status, level])
            problems.append(f"{label}: {iface.used} of {iface.total} media ports used ({iface.percent:.1f}%), "
                            f"room for {iface.calls_left} more calls"
                            + ("; new calls fail with \"Ran out of ports\"" if level is Status.FAIL else ""))
    if status is Status.OK:
        summary = (f"{usage.used} of {usage.total} media ports used, room for "
                   f"{sum(i.calls_left for i in usage.interfaces)} more calls")
        return CheckResult("rtpengine.ports", status, summary, evidence)
    remedy = ADDRESS_REMEDY if any("not an address" in p for p in problems) else PORTS_REMEDY
    return CheckResult("rtpengine.ports", status, "; ".join(problems), evidence, remedy=remedy)


# --------------------------------------------------------------------------- rtpengine.kernel_forwarding


def _rtpengine_process(ctx: CheckContext) -> ProcessInfo | None:
    """The rtpengine the console targets.  With an ng address given, the daemon that owns that socket
    (the host source's socket owners), never another one that happens to run here (a second engine, a
    test's); none when it is not known.  With none given, the first found (the one discovery picked)."""
    host = ctx.snapshot.host
    if host is None:
        return None
    candidates = [p for p in host.rtpengine if p.settings and not getattr(p, "suspect", False)]
    if ctx.config.ng is None:
        return candidates[0] if candidates else None
    ng = (host.facts.get("targets") or {}).get("ng") or {}
    owners = {owner.get("daemon_pid") or owner.get("pid") for owner in ng.get("owners") or ()}
    return next((p for p in candidates if p.pid in owners), None)


def check_kernel_forwarding(ctx: CheckContext) -> CheckResult:
    proc = _rtpengine_process(ctx)
    if proc is None:
        return CheckResult("rtpengine.kernel_forwarding", Status.SKIP, "rtpengine process settings unknown")
    table = proc.settings.get("table")
    if not isinstance(table, int) or table < 0:
        return CheckResult("rtpengine.kernel_forwarding", Status.SKIP,
                           f"no kernel table configured (table {table if table is not None else 'unset'}): "
                           "userspace forwarding by design")
    media = ctx.snapshot.media
    totals = media.totals if media else None
    user = (totals.relayed_packets_user or 0) if totals else 0
    kernel = (totals.relayed_packets_kernel or 0) if totals else 0
    modules = ctx.snapshot.host.kernel_modules if ctx.snapshot.host else {}
    loaded = modules.get("xt_RTPENGINE")
    evidence = {"table": table, "xt_RTPENGINE loaded": loaded, "relayed packets userspace": user,
                "relayed packets kernel": kernel}
    if loaded is False:
        return CheckResult("rtpengine.kernel_forwarding", Status.SKIP,
                           f"table {table} is set but xt_RTPENGINE is not loaded: everything is forwarded in "
                           "userspace (see kernel.xt_rtpengine)", evidence)
    if user + kernel < MIN_PACKETS_FOR_RATIO:
        return CheckResult("rtpengine.kernel_forwarding", Status.SKIP,
                           f"too little media relayed so far ({user + kernel} packets) to judge", evidence)
    share = user / (user + kernel)
    evidence["userspace share"] = f"{100 * share:.1f}%"
    if share > USERSPACE_WARN_SHARE:
        module = " and xt_RTPENGINE is loaded" if loaded else ""
        return CheckResult(
            "rtpengine.kernel_forwarding", Status.WARN,
            f"{100 * share:.0f}% of relayed packets went through userspace although table {table} is set{module} "
            "(rtpengine#1418)", evidence,
            remedy="check the iptables RTPENGINE rule (iptables -I INPUT -p udp -j RTPENGINE --id TABLE) and "
                   "that the streams are not DTLS/transcoded/recorded (those stay in userspace)")
    return CheckResult("rtpengine.kernel_forwarding", Status.OK,
                       f"{100 * (1 - share):.0f}% of relayed packets forwarded in the kernel", evidence)


# --------------------------------------------------------------------------- rtpengine.sessions


ZOMBIE_REMEDY = ("lost BYEs leave media sessions until rtpengine's --timeout: delete them with "
                 "`rtpengine-ctl terminate <call-id>` or lower --timeout/--silent-timeout; look for BYEs that "
                 "never reach rtpengine_delete() (or rtpengine_manage()) in opensips.cfg")
NO_MEDIA_REMEDY = ("check that opensips.cfg calls rtpengine_offer()/rtpengine_answer() (or rtpengine_manage()) "
                   "for these calls and that OpenSIPS uses this rtpengine (opensips.rtpengine_sock, "
                   "rtpengine_show): with several rtpengine nodes or sets the media may be relayed elsewhere")


def check_sessions(ctx: CheckContext) -> CheckResult:
    cid = "rtpengine.sessions"
    media = ctx.snapshot.media
    signalling = ctx.snapshot.signalling
    if media is None:
        return CheckResult(cid, Status.SKIP, "rtpengine sessions unknown")
    if signalling is None or signalling.dialogs is None:
        return CheckResult(cid, Status.SKIP, "OpenSIPS dialogs unknown: cannot match sessions")
    stale = {part: age for part, age in ctx.snapshot.stale.items() if part in ("dialogs", "media")}
    if stale:
        ages = ", ".join(f"{part} list {age:g} s old" for part, age in sorted(stale.items()))
        return CheckResult(cid, Status.UNKNOWN, f"dialogs and media sessions are not from one moment ({ages}): "
                           "not matched", {"stale": stale}, "wait for the next complete poll (R re-runs the checks)")
    dialogs, sessions = signalling.dialogs, media.sessions
    dialog_callids = {d.callid for d in dialogs}
    media_callids = {s.callid for s in sessions}
    max_age = ctx.config.thresholds.zombie_age_s
    unmatched = [s for s in sessions if s.callid not in dialog_callids]
    zombies = sorted((s for s in unmatched if not s.deleted and s.created and ctx.now - s.created > max_age),
                     key=lambda s: s.created)
    complete_list = media.sessions_total is None or media.sessions_total <= len(sessions)
    orphans = [d for d in dialogs if d.state == 4 and d.callid not in media_callids] if complete_list else []
    matched = len(sessions) - len(unmatched)
    evidence: dict[str, Any] = {"media sessions": len(sessions), "dialogs": len(dialogs),
                                "sessions with a dialog": matched,
                                "sessions without a dialog": len(unmatched)}
    problems, remedies = [], []
    if zombies:
        evidence["zombie sessions"] = [f"{s.callid} (age {int(ctx.now - s.created)} s)" for s in zombies[:10]]
        problems.append(f"{len(zombies)} zombie sessions: media sessions without an OpenSIPS dialog older than "
                        f"{max_age} s, holding {4 * len(zombies)} ports (rtpengine#1856/#2014)")
        remedies.append(ZOMBIE_REMEDY)
    if orphans:
        evidence["dialogs without media"] = [d.callid for d in orphans[:10]]
        problems.append(f"{len(orphans)} confirmed dialogs have no rtpengine session (media not relayed, "
                        "or relayed by another rtpengine)")
        remedies.append(NO_MEDIA_REMEDY)
    if not complete_list:
        evidence["note"] = f"rtpengine listed {len(sessions)} of {media.sessions_total} sessions"
    if problems:
        return CheckResult(cid, Status.WARN, "; ".join(problems), evidence, remedy="; ".join(remedies))
    return CheckResult(cid, Status.OK, _sessions_ok_summary(matched, unmatched, dialogs, max_age, ctx.now), evidence)


def _sessions_ok_summary(matched: int, unmatched: list, dialogs: tuple, max_age: float, now: float) -> str:
    """Says exactly what the evidence counts: matched sessions, and why the others are no finding."""
    text = f"{matched} media sessions match OpenSIPS dialogs (of {len(dialogs)} dialogs)"
    deleted = sum(1 for s in unmatched if s.deleted)
    young = len(unmatched) - deleted
    if deleted:
        text += f"; {deleted} without a dialog are deleted (BYE seen, within delete-delay)"
    if young:
        text += f"; {young} without a dialog are younger than {max_age:g} s (not zombies yet)"
    return text


# --------------------------------------------------------------------------- opensips.rtpengine_sock


def _ng_hint_process(ctx: CheckContext) -> ProcessInfo | None:
    """The daemon whose ng address the remedy may name: the target's own; when nothing owns the
    configured ng (a wrong address), the local daemon discovery would pick."""
    proc = _rtpengine_process(ctx)
    host = ctx.snapshot.host
    if proc is not None or host is None or ctx.config.ng is None:
        return proc
    if ((host.facts.get("targets") or {}).get("ng") or {}).get("owners"):
        return None  # the configured ng has an owner we could not match: name no other daemon
    candidates = _local_daemons(ctx)
    # Several daemons here and none is the target: guessing one would name (and ping) a stranger.
    return candidates[0] if len(candidates) == 1 else None


def _local_daemons(ctx: CheckContext) -> list[ProcessInfo]:
    host = ctx.snapshot.host
    return [p for p in (host.rtpengine if host else ()) if p.settings and not getattr(p, "suspect", False)]


def _discovered_ng(ctx: CheckContext) -> tuple[str, int] | None:
    proc = _ng_hint_process(ctx)
    value = proc.settings.get("listen-ng") if proc else None
    if not value:
        return None
    text = str(value)
    if text.isdecimal():
        return ("127.0.0.1", int(text))
    try:
        host, port = parse_hostport(text)
    except ConfigError:
        return None
    return ("127.0.0.1" if host in ("0.0.0.0", "*", "localhost", "::") else host, port)


def _node_address(url: str) -> tuple[str, int] | str:
    """'udp:127.0.0.1:60000' -> (host, port), or why it cannot be probed."""
    scheme, _, rest = url.partition(":")
    if scheme not in ("udp", "udp6"):
        return f"cannot test a {scheme or 'scheme-less'} node from here"
    try:
        return parse_hostport(rest)
    except ConfigError:
        return "unparsable node address"


def _no_listener(ctx: CheckContext) -> str:
    daemons = _local_daemons(ctx)
    if len(daemons) > 1 and _rtpengine_process(ctx) is None:
        listed = ", ".join(f"pid {p.pid} ng {p.settings.get('listen-ng', '?')}" for p in daemons)
        return (f"no rtpengine ng listener answers at the console's ng; {len(daemons)} rtpengine daemons run "
                f"here ({listed}): pass the one OpenSIPS should use with --ng")
    return "no rtpengine ng listener answers"


async def check_rtpengine_sock(ctx: CheckContext) -> CheckResult:
    signalling = ctx.snapshot.signalling
    if signalling is None:
        return CheckResult("opensips.rtpengine_sock", Status.SKIP, "OpenSIPS state unknown")
    if not signalling.relays:
        return CheckResult("opensips.rtpengine_sock", Status.SKIP, "OpenSIPS reports no rtpengine nodes")
    candidates = [a for a in (ctx.config.ng, _discovered_ng(ctx)) if a]
    nodes = {node.url: _node_address(node.url) for node in signalling.relays}
    addresses = {tuple(a) for a in [*candidates, *nodes.values()] if isinstance(a, tuple)}
    # One concurrent round of pings, well inside the check's own timeout.
    probed = dict(zip(addresses, await asyncio.gather(*(_ng_ping(a, _budget(ctx)) for a in addresses))))
    # The ng address that really answers: config.ng, else the running daemon's --listen-ng.
    actual = next((tuple(a) for a in candidates if probed.get(tuple(a)) is None), None)
    listens = f"rtpengine listens ng on {_fmt(actual)}" if actual else _no_listener(ctx)
    evidence: dict[str, Any] = {"rtpengine ng": _fmt(actual) if actual else "not found"}
    failures: list[str] = []
    for node in signalling.relays:
        address = nodes[node.url]
        verdict = address if isinstance(address, str) else _node_problem(ctx, address, probed[address], node.disabled)
        # a disabled node that answers is a stale disable: opensips.rtpengine_stale's WARN, not a wrong address
        evidence[f"set {node.set_id} {node.url}"] = verdict or (
            "ok (answers ng ping; disabled in OpenSIPS: see opensips.rtpengine_stale)" if node.disabled
            else "ok (answers ng ping)")
        if verdict:
            failures.append(f"opensips.cfg rtpengine_sock {node.url}: {verdict}; {listens}")
    if failures:
        return CheckResult("opensips.rtpengine_sock", Status.FAIL, "; ".join(failures), evidence,
                           remedy=f"set modparam(\"rtpengine\", \"rtpengine_sock\", \"udp:{_fmt(actual)}\")"
                                  if actual else NG_REMEDY)
    return CheckResult("opensips.rtpengine_sock", Status.OK,
                       f"all {len(signalling.relays)} rtpengine nodes answer ng", evidence)


def _node_problem(ctx: CheckContext, address: tuple[str, int], error: OpsError | None, disabled: bool) -> str:
    """'' when the node is fine, else what is wrong with it."""
    if error is None:
        return ""
    if isinstance(error, LegacyListenerError):
        return "points at RTPengine's -u/--listen-udp listener, not the ng listener -n/--listen-ng"
    if ctx.config.cli and tuple(ctx.config.cli) == address:
        return "points at RTPengine's CLI port (--listen-cli), not the ng listener"
    state = " (disabled in OpenSIPS)" if disabled else ""
    if isinstance(error, ConnectionRefused):
        return f"nothing listens there (connection refused){state}"
    if isinstance(error, Timeout):
        return f"no ng answer there (timeout){state}"
    return f"{error.message}{state}"


# --------------------------------------------------------------------------- calls.*
# The call checks live here, with the media relay that owns their data: packets, last-packet times and
# the RTCP-derived MOS are RTPengine's; the dialog only says who is caller/callee and when it was answered.

MAX_CALLS_LISTED = 10
ONE_WAY_REMEDY = ("one-way audio is nearly always NAT or a firewall: the silent side's RTP does not reach "
                  "RTPengine — check the address in that endpoint's SDP (fix_nated_sdp / rtpengine flags "
                  "'SIP-source-address', 'trust-address'), the firewall for RTPengine's port range, and that "
                  "the endpoint sends symmetric RTP (from the port it advertises)")
SILENT_REMEDY = ("no RTP either way: the endpoints cannot reach the address RTPengine put in the SDP — behind "
                 "NAT use --interface NAME/LOCAL!ADVERTISED, open the media port range, and check that "
                 "rtpengine_offer/answer rewrote both SDPs (a call put on hold without a re-INVITE looks the same)")
QUALITY_REMEDY = ("low MOS comes from loss, jitter and delay on the path to the reporting endpoint: check that "
                  "network (interface errors, bandwidth, QoS/DSCP marking, Wi-Fi), the relay host's load "
                  "(userspace forwarding, CPU steal), and the codec/ptime; the MOS progression shows when it began")


def _judged_calls(ctx: CheckContext, cid: str) -> list[tuple[Call, CallQuality]] | CheckResult:
    """Every call with its quality state, or the verdict when nothing can be judged."""
    snapshot, th = ctx.snapshot, ctx.config.thresholds
    if snapshot.media is None:
        if "rtpengine" not in snapshot.sources:
            return CheckResult(cid, Status.SKIP, "rtpengine not configured: call media unknown")
        return CheckResult(cid, Status.UNKNOWN, "no rtpengine data (see rtpengine.ng): call media unknown")
    stale = snapshot.stale.get("media")
    if stale is not None:
        return CheckResult(cid, Status.UNKNOWN, f"media sessions are {stale:g} s old: not judged",
                           {"stale": stale}, "wait for the next complete poll (R re-runs the checks)")
    return [(call, call_quality(call, ctx.now, mos_poor=th.mos_poor, silent_after_s=th.silent_after_s))
            for call in snapshot.calls if call.media is not None]


def _coverage(judged: list[tuple[Call, CallQuality]]) -> tuple[int, int, dict[str, int]]:
    """(calls judged, calls with media, unknown reasons -> count)."""
    unknown: dict[str, int] = {}
    for _, quality in judged:
        if quality.state is QualityState.UNKNOWN:
            unknown[quality.reason] = unknown.get(quality.reason, 0) + 1
    return len(judged) - sum(unknown.values()), len(judged), unknown


def _nothing_judged(cid: str, judged: list, what: str) -> CheckResult | None:
    known, total, unknown = _coverage(judged)
    if total == 0:
        return CheckResult(cid, Status.OK, "no calls with media")
    if known == 0:
        reasons = ", ".join(f"{count} {reason}" for reason, count in unknown.items())
        return CheckResult(cid, Status.UNKNOWN, f"{what} unknown for all {total} calls ({reasons})",
                           {"unknown": unknown}, "query the sessions over ng (rtpengine ng address)")
    return None


def _calls(count: int) -> str:
    return f"{count} call" if count == 1 else f"{count} calls"


def _scope(judged: list) -> str:
    known, total, unknown = _coverage(judged)
    return f"{known} of {total} calls judged" if unknown else f"{total} calls"


def _listed(found: list[tuple[Call, CallQuality]], describe) -> dict[str, str]:
    return {call.callid: describe(quality) for call, quality in found[:MAX_CALLS_LISTED]}


def _direction_text(quality: CallQuality) -> str:
    parts = []
    for direction in quality.silent_directions:
        role = direction.split()[0]
        leg = quality.caller if role == "caller" else quality.callee
        age = leg.last_packet_age_s if leg else None
        detail = f"last packet {age:.0f} s ago" if age is not None else "no packet since the answer"
        parts.append(f"{direction} silent ({detail}, {leg.packets if leg else '?'} packets from the {role})")
    return "; ".join(parts)


def _media_flow_check(ctx: CheckContext, cid: str, state: QualityState, fine: str, listed_as: str,
                      summary: Callable[[list, float], str], remedy: str) -> CheckResult:
    """calls.one_way / calls.silent: the calls in `state`, judged on calls whose media was queried."""
    judged = _judged_calls(ctx, cid)
    if isinstance(judged, CheckResult):
        return judged
    if (verdict := _nothing_judged(cid, judged, "media flow")) is not None:
        return verdict
    found = [(c, q) for c, q in judged if q.state is state]
    limit = ctx.config.thresholds.silent_after_s
    evidence: dict[str, Any] = {"calls": _scope(judged), "silent_after_s": limit}
    if not found:
        return CheckResult(cid, Status.OK, f"{fine} ({_scope(judged)})", evidence)
    evidence[listed_as] = _listed(found, _direction_text)
    return CheckResult(cid, Status.WARN, summary(found, limit), evidence, remedy)


def _one_way_summary(found: list, limit: float) -> str:
    first_call, first = found[0]
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    return (f"{_calls(len(found))} with one-way audio (one direction silent > {limit:g} s): "
            f"{first_call.callid} {first.silent_directions[0]} silent{more}")


def _silent_summary(found: list, limit: float) -> str:
    names = ", ".join(call.callid for call, _ in found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
    return f"{_calls(len(found))} without RTP either way for more than {limit:g} s after the answer: {names}"


def check_one_way(ctx: CheckContext) -> CheckResult:
    return _media_flow_check(ctx, "calls.one_way", QualityState.ONE_WAY, "no one-way audio", "one-way calls",
                             _one_way_summary, ONE_WAY_REMEDY)


def check_silent(ctx: CheckContext) -> CheckResult:
    return _media_flow_check(ctx, "calls.silent", QualityState.SILENT, "no silent calls", "silent calls",
                             _silent_summary, SILENT_REMEDY)


def _mos_text(quality: CallQuality) -> str:
    parts = []
    for leg in quality.legs:
        if leg.mos is None:
            continue
        figures = [f"MOS {leg.mos:.1f}"]
        if leg.mos_min is not None:
            figures.append(f"lowest {leg.mos_min:.1f}")
        for label, value, unit in (("jitter", leg.jitter_ms, " ms"), ("loss", leg.loss_pct, " %"),
                                   ("RTT", leg.rtt_ms, " ms")):
            if value is not None:
                figures.append(f"{label} {value:.0f}{unit}")
        heard = "callee -> caller" if leg.role == "caller" else "caller -> callee"
        parts.append(f"{heard} ({leg.role}'s RTCP): {', '.join(figures)}")
    return "; ".join(parts)


def check_quality(ctx: CheckContext) -> CheckResult:
    cid = "calls.quality"
    judged = _judged_calls(ctx, cid)
    if isinstance(judged, CheckResult):
        return judged
    if (verdict := _nothing_judged(cid, judged, "call quality")) is not None:
        return verdict
    th = ctx.config.thresholds
    poor = sorted(((c, q) for c, q in judged if q.state is QualityState.POOR), key=lambda cq: cq[1].mos or 0)
    with_mos = [q for _, q in judged if q.mos is not None]
    no_rtcp = sum(1 for _, q in judged if q.state is QualityState.NO_RTCP)
    evidence: dict[str, Any] = {"calls": _scope(judged), "calls with a MOS": len(with_mos),
                                "calls without RTCP (MOS unknown)": no_rtcp, "mos_poor": th.mos_poor}
    unmeasured = f"; {no_rtcp} without RTCP (MOS unknown)" if no_rtcp else ""
    if not poor:
        if not with_mos:
            return CheckResult(cid, Status.OK, f"no call reports a MOS ({no_rtcp} without RTCP): nothing to judge, "
                               "no finding", evidence)
        worst = min(q.mos for q in with_mos)
        return CheckResult(cid, Status.OK, f"{_calls(len(with_mos))} with a MOS, lowest average {worst:.1f} "
                           f"(≥ {th.mos_poor:g}){unmeasured}", evidence)
    evidence["poor calls"] = _listed(poor, _mos_text)
    status = threshold_status(len(poor), th.poor_calls_warn, th.poor_calls_fail)
    names = ", ".join(f"{call.callid} (MOS {quality.mos:.1f})" for call, quality in poor[:3])
    more = f" (+{len(poor) - 3} more)" if len(poor) > 3 else ""
    summary = f"{_calls(len(poor))} with MOS below {th.mos_poor:g}: {names}{more}{unmeasured}"
    return CheckResult(cid, status, summary, evidence, QUALITY_REMEDY if status is not Status.OK else "")


CHECKS = (
    CheckSpec("rtpengine.ng", check_ng, "rtpengine ng control protocol"),
    CheckSpec("rtpengine.cli", check_cli, "rtpengine CLI"),
    CheckSpec("rtpengine.ports", check_ports, "rtpengine media ports"),
    CheckSpec("rtpengine.kernel_forwarding", check_kernel_forwarding, "rtpengine in-kernel forwarding"),
    CheckSpec("rtpengine.sessions", check_sessions, "media sessions vs dialogs"),
    CheckSpec("opensips.rtpengine_sock", check_rtpengine_sock, "OpenSIPS rtpengine_sock points at ng"),
    CheckSpec("calls.one_way", check_one_way, "calls with one-way audio"),
    CheckSpec("calls.silent", check_silent, "calls without audio either way"),
    CheckSpec("calls.quality", check_quality, "call quality (MOS from RTCP)"),
)
