"""MI command names across OpenSIPS versions.

OpenSIPS 4.0 namespaced the MI commands (`which` lists only `module:cmd`).  The
old 3.x names still work as aliases there, except the rtpengine ones
(`rtpengine_show` answers -32601; only `rtpengine:show` works).  Names below
are the real ones from both versions' `which` captures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from console.errors import ProtocolError

from .codec import METHOD_NOT_FOUND, MIError

# 3.4 name -> 4.0 name (both lists taken from the `which` captures).
RENAMES_40: dict[str, str] = {
    "get_statistics": "statistics:get",
    "list_statistics": "statistics:list",
    "reset_statistics": "statistics:reset",
    "reset_all_statistics": "statistics:reset_all",
    "uptime": "core:uptime",
    "version": "core:version",
    "pwd": "core:pwd",
    "arg": "core:arg",
    "which": "core:which",
    "ps": "core:ps",
    "kill": "core:kill",
    "log_level": "core:log_level",
    "xlog_level": "core:xlog_level",
    "log_level_filter": "core:log_level_filter",
    "log_mute_state": "core:log_mute_state",
    "reload_routes": "core:reload_routes",
    "help": "core:help",
    "list_tcp_conns": "tcp:list",
    "shm_check": "mem:shm_check",
    "mem_pkg_dump": "mem:pkg_dump",
    "mem_shm_dump": "mem:shm_dump",
    "mem_rpm_dump": "mem:rpm_dump",
    "cache_store": "cache:store",
    "cache_fetch": "cache:fetch",
    "cache_remove": "cache:remove",
    "sr_get_status": "status_report:get",
    "sr_list_status": "status_report:status",
    "sr_list_reports": "status_report:reports",
    "sr_list_identifiers": "status_report:identifiers",
    "event_subscribe": "evi:subscribe",
    "events_list": "evi:list",
    "subscribers_list": "evi:subscribers",
    "raise_event": "evi:raise",
    "list_blacklists": "blacklists:list",
    "check_blacklists": "blacklists:check_all",
    "check_blacklist": "blacklists:check",
    "add_blacklist_rule": "blacklists:add_rule",
    "del_blacklist_rule": "blacklists:del_rule",
    "tcp_trace": "tcp:trace",
    "ws_trace": "ws:trace",
    "t_uac_dlg": "tm:uac_dlg",
    "t_uac_cancel": "tm:uac_cancel",
    "t_hash": "tm:hash",
    "t_reply": "tm:reply",
    "rand_set_prob": "cfgutils:rand_set_prob",
    "rand_reset_prob": "cfgutils:rand_reset_prob",
    "rand_get_prob": "cfgutils:rand_get_prob",
    "get_config_hash": "cfgutils:get_config_hash",
    "check_config_hash": "cfgutils:check_config_hash",
    "shv_get": "cfgutils:shv_get",
    "shv_set": "cfgutils:shv_set",
    "ul_rm": "usrloc:rm",
    "ul_rm_contact": "usrloc:rm_contact",
    "ul_dump": "usrloc:dump",
    "ul_flush": "usrloc:flush",
    "ul_add": "usrloc:add",
    "ul_show_contact": "usrloc:show_contact",
    "ul_sync": "usrloc:sync",
    "ul_cluster_sync": "usrloc:cluster_sync",
    "dlg_list": "dialog:list",
    "dlg_list_ctx": "dialog:list_ctx",
    "dlg_end_dlg": "dialog:end_dlg",
    "dlg_db_sync": "dialog:db_sync",
    "dlg_restore_db": "dialog:restore_db",
    "dlg_cluster_sync": "dialog:cluster_sync",
    "profile_get_size": "dialog:profile_get_size",
    "profile_list_dlgs": "dialog:profile_list_dlgs",
    "profile_get_values": "dialog:profile_get_values",
    "list_all_profiles": "dialog:list_all_profiles",
    "profile_end_dlgs": "dialog:profile_end_dlgs",
    "dlg_push_var": "dialog:push_var",
    "dlg_send_sequential": "dialog:send_sequential",
    "nh_enable_ping": "nathelper:enable_ping",
    "rtpengine_enable": "rtpengine:enable",
    "rtpengine_show": "rtpengine:show",
    "rtpengine_reload": "rtpengine:reload",
    "teardown": "rtpengine:teardown",
    "httpd_list_root_path": "httpd:list_root_path",
    "trace": "tracer:trace",
    "trace_start": "tracer:start",
    "trace_stop": "tracer:stop",
    # clusterer (captured on 4.0.1's `which`, #16)
    "clusterer_list": "clusterer:list",
    "clusterer_list_topology": "clusterer:list_topology",
    "clusterer_list_shtags": "clusterer:list_shtags",
    "clusterer_list_cap": "clusterer:list_cap",
    "clusterer_reload": "clusterer:reload",
    "clusterer_set_status": "clusterer:set_status",
    "clusterer_set_cap_status": "clusterer:set_cap_status",
    "clusterer_shtag_set_active": "clusterer:shtag_set_active",
    "clusterer_remove_node": "clusterer:remove_node",
    "cluster_send_mi": "clusterer:send_mi",
    "cluster_broadcast_mi": "clusterer:broadcast_mi",
}
OLD_NAMES: dict[str, str] = {new: old for old, new in RENAMES_40.items()}

# Old names that 4.0 no longer accepts as aliases (captured: rtpengine_show -> -32601).
NO_ALIAS_40 = frozenset({"rtpengine_show", "rtpengine_enable", "rtpengine_reload", "teardown"})

# Commands that change the platform; refused unless the operator allowed writes.
_WRITE_34 = frozenset({
    "dlg_end_dlg", "profile_end_dlgs", "dlg_push_var", "dlg_send_sequential", "dlg_db_sync", "dlg_restore_db",
    "dlg_cluster_sync", "ul_rm", "ul_rm_contact", "ul_add", "ul_flush", "ul_sync", "ul_cluster_sync",
    "reload_routes", "rtpengine_enable", "rtpengine_reload", "teardown", "t_uac_dlg", "t_uac_cancel", "t_reply",
    "event_subscribe", "raise_event", "kill", "log_level", "xlog_level", "log_level_filter", "reset_statistics",
    "reset_all_statistics", "cache_store", "cache_remove", "add_blacklist_rule", "del_blacklist_rule",
    "rand_set_prob", "rand_reset_prob", "shv_set", "nh_enable_ping", "tcp_trace", "ws_trace",
    "mem_pkg_dump", "mem_shm_dump", "mem_rpm_dump",
    # A dynamic trace sends copies of SIP to an address: by hand (`opsconsole mi`) it is a write; `opsconsole
    # trace` starts and stops its own in read-only mode (transient, like the console's event_subscribe), audited.
    "trace_start", "trace_stop",
    # clusterer: node/capability state, sharing-tag takeover, and MI run on other nodes (any command there)
    "clusterer_reload", "clusterer_set_status", "clusterer_set_cap_status", "clusterer_shtag_set_active",
    "clusterer_remove_node", "cluster_send_mi", "cluster_broadcast_mi",
})
WRITE_METHODS: frozenset[str] = _WRITE_34 | {RENAMES_40[n] for n in _WRITE_34} | {
    "tcp:close", "dialog:set_profile", "dialog:unset_profile", "core:profiling_proc",
}

# Calls that make OpenSIPS walk a whole table; mi_http serves one request at a time.
HEAVY_METHODS = frozenset({
    "ul_dump", "usrloc:dump", "dlg_list", "dialog:list", "dlg_list_ctx", "dialog:list_ctx",
    "profile_list_dlgs", "dialog:profile_list_dlgs",
})

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def is_write_method(name: str) -> bool:
    return name.strip() in WRITE_METHODS


def is_heavy_method(name: str) -> bool:
    return name in HEAVY_METHODS


# What a whole-table read walks (its size is a counter), and what answers the usual question cheaply.
_CONTACT_READS = frozenset({"ul_dump", "usrloc:dump"})
CHEAP_ALTERNATIVES = {
    "contacts": "ul_show_contact table_name=location aor=AOR (one AoR), ul_dump brief:=1 (~8 % of the hold), "
                "or the console's event-fed Registrations list (opsconsole)",
    "dialogs": "dlg_list callid=CALLID (one call), dlg_list index:=0 counter:=100 (one page), "
               "or the console's event-fed Calls list (opsconsole)",
}


def heavy_read_table(name: str, params: object) -> str | None:
    """'contacts' or 'dialogs' when `name` with `params` walks that whole table; None when bounded
    (one Call-ID, one page) or not a whole-table read at all."""
    name = name.strip()
    if not is_heavy_method(name):
        return None
    if name in _CONTACT_READS:
        return "contacts"
    if isinstance(params, dict) and ("callid" in params or "counter" in params):
        return None
    return "dialogs"


def major_minor(version: str) -> tuple[int, int]:
    match = _VERSION_RE.search(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def is_namespaced(version: str) -> bool:
    """OpenSIPS >= 4.0 uses module:cmd names."""
    return major_minor(version) >= (4, 0)


def map_method(name: str, version: str) -> str:
    """The wire name of `name` (old or new spelling) for an OpenSIPS `version` ("3.4", "4.0.1")."""
    name = name.strip()
    if is_namespaced(version):
        return RENAMES_40.get(name, name)
    return OLD_NAMES.get(name, name)


def parse_server_version(version_result) -> str:
    """'OpenSIPS (3.4.18 (x86_64/linux))' -> '3.4.18'."""
    server = version_result.get("Server") if isinstance(version_result, dict) else None
    if not isinstance(server, str):
        raise ProtocolError("MI 'version' reply has no 'Server' string")
    match = _VERSION_RE.search(server)
    if not match:
        raise ProtocolError(f"cannot find a version number in {server!r}")
    return match.group(0)


def parse_which(which_result) -> tuple[str, ...]:
    if not isinstance(which_result, list) or not all(isinstance(n, str) for n in which_result):
        raise ProtocolError("MI 'which' reply is not a list of command names")
    return tuple(which_result)


@dataclass(frozen=True)
class CommandMap:
    """Logical (3.x) command names -> the names this server answers to."""

    version: str = ""
    commands: frozenset[str] = field(default_factory=frozenset)
    forced: bool = False  # the operator set the version: names follow it, not `which`

    @property
    def namespaced(self) -> bool:
        if self.commands and not self.forced:
            return any(":" in c for c in self.commands) and not any(c in RENAMES_40 for c in self.commands)
        return is_namespaced(self.version)

    def name(self, logical: str) -> str:
        if self.namespaced:
            return RENAMES_40.get(logical, logical)
        return OLD_NAMES.get(logical, logical)

    def has(self, logical: str) -> bool:
        """Whether the server listed the command (True when `which` was not available)."""
        wire = self.name(logical)
        if not self.commands or wire in self.commands:
            return True
        if self.forced:  # 4.0 still answers most 3.x names as aliases
            other = RENAMES_40.get(wire) or OLD_NAMES.get(wire)
            return other in self.commands and wire not in NO_ALIAS_40
        return False


def detect_version(version_result, which_result=None) -> CommandMap:
    """Build the command map from the `version` and (optional) `which` replies."""
    version = parse_server_version(version_result)
    commands = frozenset(parse_which(which_result)) if which_result is not None else frozenset()
    return CommandMap(version=version, commands=commands)


async def detect_commands(call: Callable[[str], Awaitable[Any]], forced_version: str = "") -> tuple[CommandMap, Any]:
    """The one version detection (the source and the MI session use it): `version`, or
    `core:version` where `version` is unknown (the 4.0 name; its 3.x alias may be gone), then
    `which` (`core:which` on a namespaced server) for the command list, which may be missing.
    `forced_version` (the operator's --opensips-version) decides the names.  Returns the map
    and the raw `version` reply (the overview shows it)."""
    namespaced = is_namespaced(forced_version)
    try:
        version_result = await call("version")
    except MIError as exc:
        if exc.code != METHOD_NOT_FOUND:
            raise
        version_result = await call("core:version")
        namespaced = True
    try:
        which_result = await call("core:which" if namespaced else "which")
    except MIError:
        which_result = None
    commands = detect_version(version_result, which_result)
    if forced_version:
        commands = CommandMap(version=forced_version, commands=commands.commands, forced=True)
    return commands, version_result
