"""Diagnose checks on HostState: daemons running, kernel forwarding, iptables, kernel log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.model import CheckResult, HostState, ProcessInfo, Status
from console.plugins import CheckContext, CheckSpec

from .kmsg import ERR, RESTRICTED_REMEDY
from .processes import ng_address

RTPENGINE_START = "start it: systemctl start rtpengine-daemon / check journalctl -u rtpengine-daemon"
OPENSIPS_START = "start it: systemctl start opensips / check journalctl -u opensips"
XT_REMEDY = ("load the module: modprobe xt_RTPENGINE (package rtpengine-kernel-dkms), then restart rtpengine; "
             "or set table = -1 to forward in userspace on purpose")
MAX_SHOWN_LINES = 5


def _host_or_unknown(ctx: CheckContext, check_id: str) -> HostState | CheckResult:
    host = ctx.snapshot.host
    if host is not None:
        return host
    status = ctx.snapshot.sources.get("host")
    why = status.error if status and status.error else "the host source did not run"
    return CheckResult(check_id, Status.UNKNOWN, f"host facts unavailable: {why}",
                       remedy="run opsconsole on the media/SIP server itself, as root")


def _trusted(processes: tuple[ProcessInfo, ...]) -> list[ProcessInfo]:
    return [p for p in processes if not p.suspect]


def describe_rtpengine(proc: ProcessInfo) -> str:
    """'pid 4242 ng 127.0.0.1:2223 cli 127.0.0.1:2224 ports 30000-40000 table 0'."""
    if proc.error:
        return f"pid {proc.pid} ({proc.error})"
    s = proc.settings
    parts = [f"pid {proc.pid}"]
    for key, label in (("listen-ng", "ng"), ("listen-cli", "cli")):
        if key in s:
            parts.append(f"{label} {s[key]}")
    if "port-min" in s or "port-max" in s:
        parts.append(f"ports {s.get('port-min', 30000)}-{s.get('port-max', 40000)}")
    if "table" in s:
        parts.append(f"table {s['table']}")
    if s.get("interface"):
        parts.append("interface " + ";".join(map(str, s["interface"])))
    return " ".join(parts)


BULKY_SETTINGS = ("sources", "modparams", "modules")  # in the snapshot; too long for evidence


def _process_evidence(procs: list[ProcessInfo]) -> dict[str, Any]:
    """Flat, readable evidence: one command line per pid, problems and settings beside it."""
    evidence: dict[str, Any] = {}
    for p in procs:
        key = f"pid {p.pid}"
        evidence[key] = " ".join(p.cmdline) or p.error
        if p.user:
            evidence[f"{key} user"] = p.user
        if p.suspect:
            evidence[f"{key} suspect"] = p.suspect
        if p.settings:
            evidence[f"{key} settings"] = {k: v for k, v in p.settings.items() if k not in BULKY_SETTINGS}
    return evidence


def _running_daemons(ctx: CheckContext, cid: str, which: str, missing: str, remedy: str):
    """The trusted daemons of one kind, their evidence and a note tail — or the result that ends the check."""
    host = _host_or_unknown(ctx, cid)
    if isinstance(host, CheckResult):
        return host
    procs = getattr(host, which)
    daemons = _trusted(procs)
    impostors = [p for p in procs if p.suspect]
    evidence = _process_evidence(list(procs))
    if not daemons:
        extra = "".join(f"; pid {p.pid} ignored: {p.suspect}" for p in impostors)
        return CheckResult(cid, Status.FAIL, f"{missing}{extra}", evidence, remedy)
    notes = [f"config: {p.settings['config_error']}" for p in daemons if p.settings.get("config_error")]
    notes += [f"pid {p.pid} ignored: {p.suspect}" for p in impostors]
    tail = f" ({'; '.join(notes)})" if notes else ""
    return daemons, evidence, tail


def _simulated_relay(ctx: CheckContext, cid: str) -> CheckResult | None:
    """The demo's relay is simulated: there is no daemon, nor forwarding this host could do."""
    if not ctx.config.demo_simulated_relay:
        return None
    return CheckResult(cid, Status.SKIP, "demo platform: RTPengine is simulated in-process (rtpengine not "
                                         "installed, or more demo calls than its port range holds)")


def check_rtpengine_process(ctx: CheckContext) -> CheckResult:
    cid = "rtpengine.process"
    skipped = _simulated_relay(ctx, cid)
    if skipped is not None:
        return skipped
    about_target = _target_owner(ctx, cid, TARGET_ROLES["rtpengine"])
    if about_target is not None:
        return about_target
    found = _running_daemons(ctx, cid, "rtpengine", "no rtpengine daemon running", RTPENGINE_START)
    if isinstance(found, CheckResult):
        return found
    daemons, evidence, tail = found
    if len(daemons) == 1:
        return CheckResult(cid, Status.OK, f"rtpengine running: {describe_rtpengine(daemons[0])}{tail}", evidence)
    listed = "; ".join(describe_rtpengine(p) for p in daemons)
    ngs = [ng_address(p.settings.get("listen-ng")) for p in daemons if p.settings.get("listen-ng")]
    if len(set(ngs)) < len(ngs):
        return CheckResult(cid, Status.WARN, f"{len(daemons)} rtpengine daemons share an ng address: {listed}{tail}",
                           evidence, "stop the stale one (kill the pid not managed by systemd)")
    return CheckResult(cid, Status.OK, f"{len(daemons)} rtpengine daemons: {listed}{tail}", evidence)


def _tables_wanted(host: HostState) -> list[int]:
    """Kernel tables the running daemons ask for (-1 = userspace by choice)."""
    wanted = []
    for proc in _trusted(host.rtpengine):
        table = proc.settings.get("table", 0)  # rtpengine's default is table 0
        wanted.append(table if isinstance(table, int) else 0)
    return wanted


def check_xt_rtpengine(ctx: CheckContext) -> CheckResult:
    cid = "kernel.xt_rtpengine"
    skipped = _simulated_relay(ctx, cid)
    if skipped is not None:
        return skipped
    host = _host_or_unknown(ctx, cid)
    if isinstance(host, CheckResult):
        return host
    km = host.kernel_modules
    tables = km.get("rtpengine_table")
    wanted = _tables_wanted(host)
    evidence = {k: km.get(k) for k in ("modules_supported", "xt_RTPENGINE", "rtpengine_table")}
    evidence["tables_wanted"] = wanted
    if wanted and all(t == -1 for t in wanted):
        return CheckResult(cid, Status.SKIP, "rtpengine forwards in userspace by choice (table = -1)", evidence)
    if tables:
        missing = [t for t in wanted if t >= 0 and t not in tables]
        if missing:
            return CheckResult(cid, Status.WARN,
                               f"/proc/rtpengine has table(s) {_ids(tables)} but rtpengine wants table {missing[0]}",
                               evidence, "restart rtpengine so it creates its table, or fix `table =` in its config")
        return CheckResult(cid, Status.OK, f"kernel forwarding active: /proc/rtpengine table(s) {_ids(tables)}", evidence)
    if not km.get("modules_supported", True):
        return CheckResult(cid, Status.UNKNOWN,
                           "this kernel has no loadable-module support (no /proc/modules) and no /proc/rtpengine: "
                           "xt_RTPENGINE cannot be loaded, rtpengine forwards in userspace",
                           evidence, "set table = -1 to make userspace forwarding explicit, or run a kernel "
                           "with module support and rtpengine-kernel-dkms")
    if km.get("xt_RTPENGINE"):
        if not wanted:
            return CheckResult(cid, Status.OK, "xt_RTPENGINE loaded (no rtpengine running to create its table)",
                               evidence)
        return CheckResult(cid, Status.WARN, "xt_RTPENGINE loaded but no /proc/rtpengine table: rtpengine "
                           "fell back to userspace", evidence, "restart rtpengine; check journalctl -u rtpengine-daemon")
    return CheckResult(cid, Status.FAIL, "xt_RTPENGINE kernel module not loaded: media is forwarded in userspace",
                       evidence, XT_REMEDY)


def _ids(tables) -> str:
    return ", ".join(str(t) for t in tables)


def check_iptables(ctx: CheckContext) -> CheckResult:
    cid = "kernel.iptables"
    host = _host_or_unknown(ctx, cid)
    if isinstance(host, CheckResult):
        return host
    km = host.kernel_modules
    state = {name: km.get(name, "unknown") for name in ("ip_tables", "x_tables")}
    evidence = dict(state, ip_tables_builtin=km.get("ip_tables_builtin"), modules_supported=km.get("modules_supported"))
    described = ", ".join(f"{name} {how}" for name, how in state.items())
    if all(how in ("module", "builtin") for how in state.values()):
        return CheckResult(cid, Status.OK, f"iptables available: {described}", evidence)
    wanted = _tables_wanted(host)
    if wanted and all(t == -1 for t in wanted):
        return CheckResult(cid, Status.SKIP, f"not needed, rtpengine forwards in userspace ({described})", evidence)
    if "missing" in state.values():
        return CheckResult(cid, Status.FAIL, f"iptables not available: {described}", evidence,
                           "modprobe ip_tables x_tables (kernel forwarding needs the RTPENGINE iptables target)")
    return CheckResult(cid, Status.UNKNOWN, f"cannot tell whether iptables is available: {described}", evidence,
                       "run as root so /proc/net/ip_tables_names and /proc/config.gz can be read")


def check_dmesg(ctx: CheckContext) -> CheckResult:
    cid = "kernel.dmesg"
    host = _host_or_unknown(ctx, cid)
    if isinstance(host, CheckResult):
        return host
    dmesg = host.facts.get("dmesg")
    if not dmesg:
        return CheckResult(cid, Status.UNKNOWN, "the kernel log was not read")
    if dmesg.get("permission_denied"):
        return CheckResult(cid, Status.UNKNOWN, dmesg.get("error") or "kernel log not readable",
                           {"dmesg_restrict": dmesg.get("dmesg_restrict")}, dmesg.get("remedy") or RESTRICTED_REMEDY)
    if dmesg.get("error"):
        return CheckResult(cid, Status.UNKNOWN, f"kernel log not read: {dmesg['error']}", {},
                           "run as root")
    window = ctx.config.thresholds.dmesg_window_s
    records = [r for r in dmesg.get("records", []) if r.get("age_s", 0) <= window]
    errors = [r for r in records if r["level"] <= ERR]
    rtp = [r for r in records if r.get("rtpengine")]
    evidence = {"window_s": window, "scanned": dmesg.get("scanned"), "errors": len(errors), "rtpengine": len(rtp),
                "lines": [_line(r) for r in records[-MAX_SHOWN_LINES:]]}
    span = _span(window)
    rtp_errors = [r for r in rtp if r["level"] <= ERR]
    if rtp_errors:
        return CheckResult(cid, Status.FAIL, f"{len(rtp_errors)} rtpengine kernel error(s) in the last {span}: "
                           f"{_line(rtp_errors[-1])}", evidence, "check the xt_RTPENGINE module matches the kernel "
                           "(dkms status) and the rtpengine version")
    if errors:
        return CheckResult(cid, Status.WARN, f"{len(errors)} kernel error(s) in the last {span}, latest: "
                           f"{_line(errors[-1])}", evidence, "read them with: dmesg --level=emerg,alert,crit,err -T")
    if rtp:
        return CheckResult(cid, Status.OK, f"no kernel errors in the last {span}; {len(rtp)} rtpengine line(s), latest: "
                           f"{_line(rtp[-1])}", evidence)
    return CheckResult(cid, Status.OK, f"no kernel errors in the last {span}", evidence)


def _line(record: dict[str, Any]) -> str:
    return f"{record.get('level_name', record.get('level'))}: {record.get('message', '')}"


def _span(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def describe_opensips(proc: ProcessInfo) -> str:
    if proc.error:
        return f"pid {proc.pid} ({proc.error})"
    s = proc.settings
    parts = [f"pid {proc.pid}", f"cfg {s.get('config-file', '?')}"]
    if s.get("workers"):
        parts.append(f"{s['workers']} workers")
    if s.get("mi_http") and s["mi_http"].get("url"):
        parts.append(f"mi_http {s['mi_http']['url']}")
    if s.get("mi_fifo"):
        parts.append(f"mi_fifo {s['mi_fifo']}")
    return " ".join(parts)


def check_opensips_process(ctx: CheckContext) -> CheckResult:
    cid = "opensips.process"
    if ctx.config.demo:
        return CheckResult(cid, Status.SKIP, "demo platform: OpenSIPS is simulated in-process, there is no daemon to find")
    about_target = _target_owner(ctx, cid, TARGET_ROLES["opensips"])
    if about_target is not None:
        return about_target
    found = _running_daemons(ctx, cid, "opensips", "no OpenSIPS running", OPENSIPS_START)
    if isinstance(found, CheckResult):
        return found
    daemons, evidence, tail = found
    listed = "; ".join(describe_opensips(p) for p in daemons)
    prefix = "OpenSIPS running" if len(daemons) == 1 else f"{len(daemons)} OpenSIPS instances"
    return CheckResult(cid, Status.OK, f"{prefix}: {listed}{tail}", evidence)


# --------------------------------------------------------------------------- the targeted daemon


@dataclass(frozen=True)
class _Role:
    which: str  # HostState attribute and process name: "rtpengine" / "opensips"
    role: str  # key in HostState.facts["targets"]: "ng" / "mi"
    label: str  # "ng" / "MI"
    option: str  # how the operator points the console elsewhere
    start: str  # remedy when nothing serves a local target


TARGET_ROLES = {
    "rtpengine": _Role("rtpengine", "ng", "ng", "--ng", RTPENGINE_START),
    "opensips": _Role("opensips", "mi", "MI", "--mi-url/--mi-fifo", OPENSIPS_START),
}


def _describe(role: _Role, proc: ProcessInfo) -> str:
    return describe_rtpengine(proc) if role.which == "rtpengine" else describe_opensips(proc)


def _declares(role: _Role, proc: ProcessInfo, target: str) -> bool:
    """Whether the daemon's own command line / cfg says it serves `target` (used when the socket's
    owner cannot be read, i.e. not root)."""
    s = proc.settings or {}
    if role.which == "rtpengine":
        return s.get("ng_address") == target
    url = (s.get("mi_http") or {}).get("url") or ""
    return target == s.get("mi_fifo") or f"//{target}/" in url


def _target_owner(ctx: CheckContext, cid: str, role: _Role) -> CheckResult | None:
    """The verdict about the process that serves the console's target; None when the host
    facts carry no target (then the check lists the running daemons, as before)."""
    host = _host_or_unknown(ctx, cid)
    if isinstance(host, CheckResult):
        return host
    facts = (host.facts.get("targets") or {}).get(role.role)
    if not facts:
        return None
    procs = getattr(host, role.which)
    target, what = facts["target"], f"{role.label} {facts['target']}"
    evidence: dict[str, Any] = {"target": target, "where": facts.get("why", "")}
    evidence.update(_process_evidence(list(procs)))
    owners = facts.get("owners") or []
    owning = {o.get("daemon_pid") or o["pid"] for o in owners}
    mine = [p for p in procs if p.pid in owning]
    others = [p for p in procs if p.pid not in owning and not p.suspect]
    aside = _not_the_target(role, others)
    if facts.get("local") is not True:
        return CheckResult(cid, Status.SKIP, f"{what} is not on this host ({facts.get('why', '')}): its process "
                           f"cannot be checked from here{aside}", evidence,
                           f"run opsconsole diagnose on the server that runs {role.which}")
    trusted = [p for p in mine if not p.suspect and not p.error]
    if trusted:
        return CheckResult(cid, Status.OK, f"{role.which} {_describe(role, trusted[0])} serves {what}{aside}", evidence)
    if mine:
        reason = mine[0].suspect or mine[0].error
        return CheckResult(cid, Status.WARN, f"{what} is held by pid {mine[0].pid}, named {role.which} but {reason}",
                           evidence, f"find out what pid {mine[0].pid} is (ls -l /proc/{mine[0].pid}/exe)")
    unlisted = [o for o in owners if o.get("name") == role.which]
    if unlisted:  # it exited, or could not be read, between the process scan and the socket scan
        return CheckResult(cid, Status.SKIP, f"{what} is held by pid {unlisted[0]['pid']} ({role.which}), which could "
                           f"not be read as a daemon (it exited or is not readable){aside}", evidence)
    if owners:
        held = ", ".join(f"pid {o['pid']} ({o.get('name') or '?'})" for o in owners)
        return CheckResult(cid, Status.SKIP, f"{what} is served by {held}, not by a {role.which} daemon of this host "
                           f"(a container, tunnel or proxy?): the daemon behind it cannot be checked from here{aside}",
                           evidence)
    return _unowned(cid, role, facts, what, others, evidence)


MAX_OTHERS_SHOWN = 3


def _not_the_target(role: _Role, others: list[ProcessInfo]) -> str:
    """Other local instances, briefly (their whole settings are in the evidence)."""
    if not others:
        return ""
    def brief(p: ProcessInfo) -> str:
        s = p.settings or {}
        where = s.get("ng_address") if role.which == "rtpengine" else ((s.get("mi_http") or {}).get("url")
                                                                       or s.get("mi_fifo") or s.get("config-file"))
        return f"pid {p.pid}" + (f" {role.label} {where}" if where else "")
    shown = [brief(p) for p in others[:MAX_OTHERS_SHOWN]]
    more = f" and {len(others) - MAX_OTHERS_SHOWN} more" if len(others) > MAX_OTHERS_SHOWN else ""
    return f"; not the target: {', '.join(shown)}{more}"


def _unowned(cid: str, role: _Role, facts: dict[str, Any], what: str, others: list[ProcessInfo],
             evidence: dict[str, Any]) -> CheckResult:
    """A local target nobody readable holds: nothing serves it — unless the holder hides among
    the processes we could not read (not root)."""
    there = facts.get("exists") if facts["proto"] == "fifo" else facts.get("listening")
    hidden = facts.get("unreadable_processes", 0)
    if there and hidden:
        declared = [p for p in others if not p.error and _declares(role, p, facts["target"])]
        if declared:
            aside = _not_the_target(role, [p for p in others if p is not declared[0]])
            return CheckResult(cid, Status.OK, f"{role.which} {_describe(role, declared[0])} serves {what} by its "
                               f"configuration (its sockets are not readable: run as root to verify){aside}", evidence)
        return CheckResult(cid, Status.UNKNOWN, f"something holds {what}, but {hidden} processes are not readable "
                           "to tell which", evidence, "run as root")
    if facts["proto"] == "fifo":
        summary = (f"MI FIFO {facts['target']} does not exist" if not there
                   else f"no process holds MI FIFO {facts['target']} open (left behind by a stopped OpenSIPS?)")
    else:
        summary = f"nothing on this host listens on {what}"
    remedy = role.start + (f", or point {role.option} at the instance you mean" if others else "")
    return CheckResult(cid, Status.FAIL, f"{summary}{_not_the_target(role, others)}", evidence, remedy)


CHECKS = (
    CheckSpec("rtpengine.process", check_rtpengine_process, "rtpengine daemon running"),
    CheckSpec("kernel.xt_rtpengine", check_xt_rtpengine, "in-kernel forwarding (xt_RTPENGINE)"),
    CheckSpec("kernel.iptables", check_iptables, "iptables (ip_tables, x_tables)"),
    CheckSpec("kernel.dmesg", check_dmesg, "kernel log errors"),
    CheckSpec("opensips.process", check_opensips_process, "OpenSIPS running"),
)
