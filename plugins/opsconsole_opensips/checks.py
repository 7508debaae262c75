"""Diagnose checks on SignallingState: MI reachable, load, shared memory, WebSocket health."""

from __future__ import annotations

from typing import Any

from console.model import CheckResult, Contact, SignallingState, Status, threshold_status
from console.plugins import CheckContext, CheckSpec

MI_REMEDY = ("check that OpenSIPS runs and loads mi_http (httpd listening on the MI URL) or mi_fifo; "
             "test with: opensips-cli -x mi version")
LOAD_REMEDY = ("OpenSIPS workers are busy: add children/tcp_children, look for slow DB/DNS lookups in the script "
               "(get_statistics load: per process)")
SHM_REMEDY = "raise shared memory (opensips -m <MB>) and look for leaks (mi mem_shm_dump / get_statistics shmem:)"
WS_STALE_REMEDY = ("WebSocket registrations outlive their connections (opensips#2554): calls to them fail; "
                   "remove them (ul_rm_contact, needs --allow-write) or shorten WS registration expiry")
WS_PROTO_REMEDY = 'load proto_ws and listen on a WS socket: loadmodule "proto_ws.so" + socket=ws:IP:PORT'
MAX_LISTED = 10
_WS_TYPES = ("ws", "wss")


def _signalling_or_result(ctx: CheckContext, check_id: str) -> SignallingState | CheckResult:
    sig = ctx.snapshot.signalling
    if sig is not None:
        return sig
    status = ctx.snapshot.sources.get("opensips")
    if status is None:
        return CheckResult(check_id, Status.SKIP, "OpenSIPS MI not configured (no mi_url / mi_fifo)")
    if check_id == "opensips.mi":
        return CheckResult(check_id, Status.FAIL, f"OpenSIPS MI unavailable: {status.error or 'no data'}",
                           {"error": status.error}, MI_REMEDY)
    # The cause and its remedy are reported once, by opensips.mi; repeating them here is noise.
    return CheckResult(check_id, Status.UNKNOWN, "no OpenSIPS data (see opensips.mi)",
                       {"error": status.error}, "fix opensips.mi first")


def check_mi(ctx: CheckContext) -> CheckResult:
    cid = "opensips.mi"
    sig = _signalling_or_result(ctx, cid)
    if isinstance(sig, CheckResult):
        return sig
    ov = sig.overview
    up = f", up {ov.uptime_s} s" if ov.uptime_s is not None else ""
    partial = f"; {len(sig.errors)} MI command(s) failed" if sig.errors else ""
    evidence: dict[str, Any] = {"target": sig.target, "server": ov.server, "version": ov.version,
                                "uptime_s": ov.uptime_s, "commands": len(sig.commands), "errors": list(sig.errors)}
    return CheckResult(cid, Status.OK, f"OpenSIPS {ov.version or '?'} answers MI at {sig.target}{up}{partial}", evidence)


def check_load(ctx: CheckContext) -> CheckResult:
    cid = "opensips.load"
    sig = _signalling_or_result(ctx, cid)
    if isinstance(sig, CheckResult):
        return sig
    load = sig.overview.load
    th = ctx.config.thresholds
    evidence = {"load": load, "load_1m": sig.overview.load_1m, "warn": th.load_warn, "fail": th.load_fail}
    if load is None:
        return CheckResult(cid, Status.UNKNOWN, "OpenSIPS load not reported (get_statistics load: failed)", evidence,
                           "check that get_statistics answers over MI")
    text = f"OpenSIPS load {load:g}% (1m {sig.overview.load_1m if sig.overview.load_1m is not None else '?'}%)"
    return _graded(cid, load, th.load_warn, th.load_fail, text, evidence, LOAD_REMEDY)


def check_shm(ctx: CheckContext) -> CheckResult:
    cid = "opensips.shm"
    sig = _signalling_or_result(ctx, cid)
    if isinstance(sig, CheckResult):
        return sig
    ov = sig.overview
    th = ctx.config.thresholds
    percent = ov.shm_percent
    evidence = {"used": ov.shm_used, "total": ov.shm_total, "percent": percent, "warn": th.shm_warn, "fail": th.shm_fail}
    if percent is None:
        return CheckResult(cid, Status.UNKNOWN, "OpenSIPS shared memory not reported (get_statistics shmem:)", evidence,
                           "check that get_statistics answers over MI")
    text = f"OpenSIPS shared memory {percent:.1f}% used ({_mb(ov.shm_used)} of {_mb(ov.shm_total)})"
    return _graded(cid, percent, th.shm_warn, th.shm_fail, text, evidence, SHM_REMEDY)


def _graded(cid: str, value: float, warn: float, fail: float, text: str, evidence: dict, remedy: str) -> CheckResult:
    status = threshold_status(value, warn, fail)
    if status is Status.OK:
        return CheckResult(cid, status, text, evidence)
    limit = fail if status is Status.FAIL else warn
    return CheckResult(cid, status, f"{text} ≥ {limit:g}%", evidence, remedy)


def _mb(value: int | None) -> str:
    return "?" if value is None else f"{value / 1048576:.0f} MB"


def contact_address(contact: Contact) -> str:
    """host:port the contact is reached at: `received` when set (NAT), else the contact URI's."""
    return uri_hostport(contact.received) if contact.received else uri_hostport(contact.contact)


def uri_hostport(uri: str) -> str:
    """'sip:abc@127.0.0.1:32822;transport=ws' -> '127.0.0.1:32822'."""
    text = uri.strip().strip("<>")
    for scheme in ("sips:", "sip:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    text = text.rpartition("@")[2]
    for stop in (";", ">", "?"):
        text = text.partition(stop)[0]
    return text.lower()


def check_ws(ctx: CheckContext) -> CheckResult:
    cid = "opensips.ws"
    sig = _signalling_or_result(ctx, cid)
    if isinstance(sig, CheckResult):
        return sig
    ws_contacts = [c for c in sig.contacts or () if c.ws]
    ws_dialogs = [d for d in sig.dialogs or ()
                  if any(leg.transport in _WS_TYPES for leg in (d.caller, *d.callees))]
    ws_conns = [c for c in sig.connections or () if c.type in _WS_TYPES]
    if not ws_contacts and not ws_dialogs:
        if sig.contacts is None or sig.dialogs is None:
            missing = " and ".join(name for name, value in (("contact", sig.contacts), ("dialog", sig.dialogs))
                                   if value is None)
            note = f": {sig.contacts_note}" if sig.contacts is None and sig.contacts_note else ""
            return CheckResult(cid, Status.SKIP, f"WebSocket use unknown: no {missing} list{note}")
        return CheckResult(cid, Status.SKIP, "no WebSocket contacts or dialogs")
    listeners = [l for l in sig.listeners if l.split(":", 1)[0] in _WS_TYPES]
    has_proto_ws = any(c in ("ws_trace", "ws:trace") for c in sig.commands) or "proto_ws" in sig.modules
    evidence: dict[str, Any] = {"ws_contacts": len(ws_contacts), "ws_dialogs": len(ws_dialogs),
                                "ws_connections": len(ws_conns), "listeners": listeners, "proto_ws": has_proto_ws}
    if not listeners and not ws_conns:
        return CheckResult(cid, Status.FAIL, "WebSocket clients present but no ws:/wss: listener found", evidence,
                           WS_PROTO_REMEDY)
    if sig.commands and not has_proto_ws:
        return CheckResult(cid, Status.WARN, "WS sockets seen but proto_ws MI commands are missing", evidence,
                           WS_PROTO_REMEDY)
    if sig.contacts is None:
        # Without the contact list the stale-registration test cannot run: no verdict on it.
        note = f" ({sig.contacts_note})" if sig.contacts_note else ""
        evidence["ws_contacts"] = None
        return CheckResult(cid, Status.SKIP,
                           f"{len(ws_dialogs)} WS dialogs, {len(ws_conns)} live WS connections; stale WS "
                           f"registrations not checked: contact list not available{note}", evidence)
    stale_age = ctx.snapshot.stale.get("contacts")
    if stale_age is not None:
        return CheckResult(cid, Status.UNKNOWN,
                           f"{len(ws_contacts)} WS contacts in a list {stale_age:g} s old: not matched against "
                           "the current WS connections", evidence, "wait for the next complete poll (R re-runs the checks)")
    if sig.connections is None:
        return CheckResult(cid, Status.UNKNOWN,
                           f"{len(ws_contacts)} WS contacts; TCP connection list unavailable, cannot verify them",
                           evidence, "check that list_tcp_conns (tcp:list) answers over MI")
    live = {c.remote.lower() for c in ws_conns}
    stale = [c for c in ws_contacts if contact_address(c) not in live]
    if stale:
        shown = [f"{c.aor} {contact_address(c)}" for c in stale[:MAX_LISTED]]
        evidence["stale"] = [{"aor": c.aor, "contact": c.contact, "address": contact_address(c)} for c in stale]
        more = f" (+{len(stale) - MAX_LISTED} more)" if len(stale) > MAX_LISTED else ""
        return CheckResult(cid, Status.WARN,
                           f"{len(stale)} stale WS registrations without a live WS connection: {', '.join(shown)}{more}",
                           evidence, WS_STALE_REMEDY)
    partial = " (partial contact list)" if sig.contacts_mode == "events-partial" else ""
    dialogs = f"{len(ws_dialogs)} dialogs" if sig.dialogs is not None else "dialogs unknown"
    return CheckResult(cid, Status.OK,
                       f"WebSocket ok: {len(ws_contacts)} contacts{partial}, {dialogs}, "
                       f"{len(ws_conns)} live WS connections on {', '.join(listeners) or 'ws'}", evidence)


# --------------------------------------------------------------------------- opensips.sip_failures

SIP_FAILURE_REMEDY = ("5xx: a next hop fails or does not answer (OpenSIPS turns 503 into 500, a timeout into 408/"
                      "500): check the gateways/dispatcher destinations and tm:timeout_finalresponse_inv; 6xx: a "
                      "destination refuses globally (600 Busy Everywhere, 603 Decline); trace a failing call with "
                      "`opsconsole mi` (sip_trace/trace_start) or sngrep to see who answers it")


def check_sip_failures(ctx: CheckContext) -> CheckResult:
    """5xx + 6xx share of the final replies between two samples of the sl:/tm: counters."""
    cid = "opensips.sip_failures"
    sig = _signalling_or_result(ctx, cid)
    if isinstance(sig, CheckResult):
        return sig
    th = ctx.config.thresholds
    if sig.overview.sip is None:
        return CheckResult(cid, Status.UNKNOWN, "OpenSIPS reports no sl:/tm: reply counters (get_statistics sl: "
                           "tm: answered nothing)", remedy="load the sl and tm modules; check get_statistics over MI")
    window = sig.sip_window
    if window is None:
        return CheckResult(cid, Status.UNKNOWN, "one sample of the reply counters only: a failure share needs two "
                           "(the second read failed, or OpenSIPS restarted in between)",
                           {"since start": _since_start(sig.overview.sip)}, "run diagnose again")
    evidence = _window_evidence(window)
    evidence["since start"] = _since_start(sig.overview.sip)
    counts = ", ".join(f"{cls} {window.finals.get(cls, 0)}" for cls in ("2xx", "3xx", "4xx", "5xx", "6xx"))
    span = f"{window.total} final replies in {window.seconds:.1f} s ({counts})"
    if window.total < th.sip_min_replies:
        return CheckResult(cid, Status.OK, f"too little traffic to judge a failure share: {span}; at least "
                           f"{th.sip_min_replies} needed", evidence)
    share = window.share("5xx", "6xx") or 0.0
    evidence.update(warn=th.sip_failure_warn, fail=th.sip_failure_fail)
    status = threshold_status(share, th.sip_failure_warn, th.sip_failure_fail)
    text = f"{share:.1f}% of final replies are 5xx/6xx: {span}"
    if status is Status.OK:
        return CheckResult(cid, status, text, evidence)
    limit = th.sip_failure_fail if status is Status.FAIL else th.sip_failure_warn
    return CheckResult(cid, status, f"{text} ≥ {limit:g}%", evidence, SIP_FAILURE_REMEDY)


def _window_evidence(window) -> dict[str, Any]:
    evidence: dict[str, Any] = {"window_s": round(window.seconds, 2)}
    for cls in ("2xx", "3xx", "4xx", "5xx", "6xx"):
        evidence[f"{cls} replies"] = window.finals.get(cls)
        share = window.share(cls)
        evidence[f"{cls} share %"] = round(share, 1) if share is not None else None
    evidence["retransmissions"] = window.retransmissions
    evidence["INVITE timeouts"] = window.timeouts_inv
    return evidence


def _since_start(counters) -> str:
    """The counters since OpenSIPS started: context for a short window, never the verdict."""
    finals = {cls: counters.finals(cls) for cls in ("2xx", "3xx", "4xx", "5xx", "6xx")}
    return ", ".join(f"{cls} {value}" for cls, value in finals.items() if value is not None)


def check_trace_ready(ctx: CheckContext) -> CheckResult:
    """Can `opsconsole trace` run?  Informational: SKIP when the tracer is not loaded, never FAIL."""
    from .trace import CONFIG_LINES, readiness

    cid = "opensips.trace_ready"
    sig = _signalling_or_result(ctx, cid)
    if isinstance(sig, CheckResult):
        return sig
    if not sig.commands:
        return CheckResult(cid, Status.SKIP, "OpenSIPS did not list its MI commands (which): tracer not checked")
    evidence = {"tracer": readiness(sig.commands).tracer}
    if not evidence["tracer"]:
        return CheckResult(cid, Status.SKIP, "SIP trace not configured: the tracer module is not loaded "
                           "(opsconsole trace needs it)", evidence,
                           "to trace calls, add to opensips.cfg and restart: " + "; ".join(CONFIG_LINES))
    # proto_hep refuses to start without a hep_udp/hep_tcp socket, so a loaded tracer with HEP URIs works;
    # `opsconsole trace` checks the socket itself (MI ps) when it starts.
    return CheckResult(cid, Status.OK, "SIP trace ready: tracer loaded (opsconsole trace)", evidence)


CHECKS = (
    CheckSpec("opensips.mi", check_mi, "OpenSIPS MI reachable"),
    CheckSpec("opensips.load", check_load, "OpenSIPS load"),
    CheckSpec("opensips.shm", check_shm, "OpenSIPS shared memory"),
    CheckSpec("opensips.ws", check_ws, "SIP over WebSocket"),
    CheckSpec("opensips.sip_failures", check_sip_failures, "SIP 5xx/6xx failure share"),
    CheckSpec("opensips.trace_ready", check_trace_ready, "SIP trace (tracer + HEP) available"),
)
