"""MI (JSON-RPC over mi_http) responses rendered from a DemoState.

Shapes follow the real OpenSIPS 3.4.18 / 4.0.1 captures key for key
(tests compare them recursively).  Errors are the captured JSON-RPC errors.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from .state import DIALOG_LIFETIME, TCP_CONN_LIFETIME, DemoState, SimContact, SimDialog

# get_statistics groups and names in the order OpenSIPS 3.4 prints them ("all").
_PROCS = (1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)
STAT_GROUPS: dict[str, tuple[str, ...]] = {
    "shmem": ("total_size", "max_used_size", "free_size", "used_size", "real_used_size", "fragments"),
    "rpmem": ("rpm_total_size", "rpm_used_size", "rpm_real_used_size", "rpm_fragments", "rpm_max_used_size", "rpm_free_size"),
    "core": ("rcv_requests", "rcv_replies", "fwd_requests", "fwd_replies", "drop_requests", "drop_replies",
             "err_requests", "err_replies", "bad_URIs_rcvd", "bad_msg_hdr", "slow_messages", "timestamp"),
    "net": ("waiting_udp", "waiting_tcp", "waiting_tls"),
    "dns": ("dns_total_queries", "dns_slow_queries"),
    "sql": ("sql_total_queries", "sql_slow_queries"),
    "cdb": ("cdb_total_queries", "cdb_slow_queries"),
    "tm": ("received_replies", "relayed_replies", "local_replies", "UAS_transactions", "UAC_transactions",
           "2xx_transactions", "3xx_transactions", "4xx_transactions", "5xx_transactions", "6xx_transactions",
           "inuse_transactions", "cluster_reply_sent", "cluster_request_sent", "cluster_cancel_sent",
           "cluster_reply_recv", "cluster_request_recv", "cluster_cancel_recv", "retransmission_req_T1_1",
           "retransmission_req_T1_2", "retransmission_req_T1_3", "retransmission_req_T2", "retransmission_rpl_T2",
           "timeout_finalresponse", "timeout_finalresponse_inv"),
    "sl": ("1xx_replies", "2xx_replies", "3xx_replies", "4xx_replies", "5xx_replies", "6xx_replies",
           "sent_replies", "sent_err_replies", "received_ACKs"),
    "usrloc": ("registered_users", "location-users", "location-contacts", "location-expires"),
    "registrar": ("max_expires", "max_contacts", "default_expire", "accepted_regs", "rejected_regs"),
    "dialog": ("active_dialogs", "early_dialogs", "processed_dialogs", "expired_dialogs", "failed_dialogs",
               "create_sent", "update_sent", "delete_sent", "create_recv", "update_recv", "delete_recv"),
    "load": tuple(f"{kind}-proc-{p}" for p in _PROCS for kind in ("load", "load1m", "load10m"))
    + ("load", "load1m", "load10m", "load-all", "load1m-all", "load10m-all", "processes_number"),
    "pkmem": tuple(f"{p}-{n}" for p in _PROCS for n in ("total_size", "used_size", "real_used_size",
                                                       "max_used_size", "free_size", "fragments")),
}
_STAT_GROUP_OF = {name: group for group, names in STAT_GROUPS.items() for name in names}

COMMANDS_34 = (
    "get_statistics", "list_statistics", "reset_statistics", "reset_all_statistics", "uptime", "version", "pwd", "arg",
    "which", "ps", "kill", "log_level", "xlog_level", "log_level_filter", "log_mute_state", "shm_check", "cache_store",
    "cache_fetch", "cache_remove", "event_subscribe", "events_list", "subscribers_list", "raise_event", "list_tcp_conns",
    "mem_pkg_dump", "mem_shm_dump", "mem_rpm_dump", "reload_routes", "sr_get_status", "sr_list_status",
    "sr_list_reports", "sr_list_identifiers", "help", "list_blacklists", "check_blacklists", "check_blacklist",
    "add_blacklist_rule", "del_blacklist_rule", "tcp_trace", "ws_trace", "t_uac_dlg", "t_uac_cancel", "t_hash",
    "t_reply", "rand_set_prob", "rand_reset_prob", "rand_get_prob", "get_config_hash", "check_config_hash", "shv_get",
    "shv_set", "ul_rm", "ul_rm_contact", "ul_dump", "ul_flush", "ul_add", "ul_show_contact", "ul_sync",
    "ul_cluster_sync", "dlg_list", "dlg_list_ctx", "dlg_end_dlg", "dlg_db_sync", "dlg_restore_db", "dlg_cluster_sync",
    "profile_get_size", "profile_list_dlgs", "profile_get_values", "list_all_profiles", "profile_end_dlgs",
    "dlg_push_var", "dlg_send_sequential", "nh_enable_ping", "rtpengine_enable", "rtpengine_show", "rtpengine_reload",
    "teardown", "httpd_list_root_path",
)
COMMANDS_40 = (
    "statistics:get", "statistics:list", "statistics:reset", "statistics:reset_all", "core:uptime", "core:version",
    "core:pwd", "core:arg", "core:which", "core:ps", "core:kill", "core:log_level", "core:xlog_level",
    "core:profiling_proc", "core:log_level_filter", "core:log_mute_state", "core:reload_routes", "core:help",
    "tcp:list", "tcp:close", "mem:shm_check", "mem:pkg_dump", "mem:shm_dump", "mem:rpm_dump", "cache:store",
    "cache:fetch", "cache:remove", "status_report:get", "status_report:status", "status_report:reports",
    "status_report:identifiers", "evi:subscribe", "evi:list", "evi:subscribers", "evi:raise", "blacklists:list",
    "blacklists:check_all", "blacklists:check", "blacklists:add_rule", "blacklists:del_rule", "tcp:trace", "ws:trace",
    "tm:uac_dlg", "tm:uac_cancel", "tm:hash", "tm:reply", "cfgutils:rand_set_prob", "cfgutils:rand_reset_prob",
    "cfgutils:rand_get_prob", "cfgutils:get_config_hash", "cfgutils:check_config_hash", "cfgutils:shv_get",
    "cfgutils:shv_set", "usrloc:rm", "usrloc:rm_contact", "usrloc:dump", "usrloc:flush", "usrloc:add",
    "usrloc:show_contact", "usrloc:sync", "usrloc:cluster_sync", "dialog:list", "dialog:list_ctx", "dialog:end_dlg",
    "dialog:db_sync", "dialog:restore_db", "dialog:cluster_sync", "dialog:profile_get_size",
    "dialog:profile_list_dlgs", "dialog:profile_get_values", "dialog:list_all_profiles", "dialog:profile_end_dlgs",
    "dialog:push_var", "dialog:send_sequential", "dialog:set_profile", "dialog:unset_profile",
    "nathelper:enable_ping", "rtpengine:enable", "rtpengine:show", "rtpengine:reload", "rtpengine:teardown",
    "httpd:list_root_path",
)
# 4.0 namespaced name -> the 3.4 name this simulator implements
NEW_NAMES = {
    "statistics:get": "get_statistics", "core:uptime": "uptime", "core:version": "version", "core:which": "which",
    "core:ps": "ps", "core:help": "help", "tcp:list": "list_tcp_conns", "evi:subscribe": "event_subscribe",
    "evi:subscribers": "subscribers_list", "usrloc:dump": "ul_dump", "usrloc:show_contact": "ul_show_contact",
    "dialog:list": "dlg_list", "dialog:list_ctx": "dlg_list_ctx", "dialog:profile_get_size": "profile_get_size",
    "dialog:profile_get_values": "profile_get_values", "dialog:list_all_profiles": "list_all_profiles",
    "dialog:profile_list_dlgs": "profile_list_dlgs", "rtpengine:show": "rtpengine_show",
    "httpd:list_root_path": "httpd_list_root_path",
}
REMOVED_IN_40 = {"rtpengine_show"}

# accepted named-parameter sets per command (positional: by count, in this order)
SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "version": ((),), "uptime": ((),), "ps": ((),), "which": ((), ("command",)),
    "get_statistics": (("statistics",),),
    "ul_dump": ((), ("brief",)), "ul_show_contact": (("table_name", "aor"),),
    "dlg_list": ((), ("callid",), ("callid", "from_tag"), ("index", "counter")),
    "dlg_list_ctx": ((), ("callid",), ("callid", "from_tag"), ("index", "counter")),
    "profile_get_size": (("profile",), ("profile", "value")), "profile_get_values": (("profile",),),
    "profile_list_dlgs": (("profile",), ("profile", "value")), "list_all_profiles": ((),),
    "rtpengine_show": ((),), "list_tcp_conns": ((),), "httpd_list_root_path": ((),), "help": (("mi_cmd",),),
    "event_subscribe": (("event", "socket"), ("event", "socket", "expire")),
    "subscribers_list": ((), ("event",), ("event", "socket")),
    # tracer (only with a DemoTracer, see tracer.py): the named sets the real 3.4/4.0 accept
    "trace": ((),), "trace_start": (("id", "uri"), ("id", "uri", "filter"), ("id", "uri", "filter", "scope", "type")),
    "trace_stop": (("id",),),
}
TRACER_NAMES = {"trace": "trace", "trace_start": "trace_start", "trace_stop": "trace_stop",
                "tracer:trace": "trace", "tracer:start": "trace_start", "tracer:stop": "trace_stop"}
PROFILES = ("calls", "callsbyproto")


class MiError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_dict(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _bad_params(data: str = "Too few or too many parameters") -> MiError:
    return MiError(-32602, "Invalid params", data)


def _utc(ts: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.gmtime(ts))


class MiRenderer:
    """Dispatches one JSON-RPC call against the state.

    `subscriptions` handles event_subscribe/subscribers_list (the server's event hub).
    """

    def __init__(self, state: DemoState, subscriptions=None, *, rtpengine_url: str = "udp:127.0.0.1:60000",
                 httpd: str = "127.0.0.1:8888") -> None:
        self.state = state
        self.subscriptions = subscriptions
        self.rtpengine_url = rtpengine_url  # the relay OpenSIPS is configured with (rtpengine_sock)
        self.httpd = httpd
        self.is_40 = state.version.startswith("4")
        self.tracer = None  # a opsconsole_demo.tracer.DemoTracer: the tracer module is "loaded"

    # ------------------------------------------------------------------ envelope

    def respond(self, body: bytes) -> dict:
        """A raw POST body -> the JSON-RPC response object."""
        request, error = self.decode(body)
        return error if request is None else self.answer(request)

    @staticmethod
    def decode(body: bytes) -> tuple[dict | None, dict | None]:
        """(request, None) for a valid JSON-RPC request, else (None, the captured error response)."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return None, {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}
        return request, None

    def answer(self, request: dict) -> dict:
        request_id = request.get("id")
        try:
            result = self.call(request["method"], request.get("params"))
        except MiError as exc:
            return {"jsonrpc": "2.0", "error": exc.as_dict(), "id": request_id}
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def resolve(self, method: str) -> str | None:
        if method in TRACER_NAMES:
            return TRACER_NAMES[method] if self.tracer is not None else None
        if self.is_40:
            if method in REMOVED_IN_40:
                return None
            if method in NEW_NAMES:
                return NEW_NAMES[method]
        elif method not in COMMANDS_34:
            return None
        return method if method in SIGNATURES else None

    def call(self, method: str, params: Any = None) -> Any:
        name = self.resolve(method)
        handler: Callable | None = getattr(self, f"_mi_{name}", None) if name else None
        if handler is None:
            raise MiError(-32601, "Method not found")
        return handler(**self._bind(name, params))

    def _bind(self, name: str, params: Any) -> dict:
        signatures = SIGNATURES[name]
        if params is None:
            params = {}
        if isinstance(params, list):
            for signature in signatures:
                if len(signature) == len(params):
                    return dict(zip(signature, params))
            raise _bad_params()
        if not isinstance(params, dict):
            raise _bad_params()
        if tuple(sorted(params)) not in {tuple(sorted(s)) for s in signatures}:
            raise _bad_params()
        return params

    # ------------------------------------------------------------------ core

    def _mi_version(self) -> dict:
        release = "4.0.1" if self.is_40 else "3.4.18"
        return {"Server": f"OpenSIPS ({release} (x86_64/linux))"}

    def _mi_uptime(self) -> dict:
        fmt = "%a %b %d %H:%M:%S %Y"
        return {"Now": _utc(self.state.now, fmt), "Up since": _utc(self.state.started, fmt),
                "Up time": f"{self.state.uptime} [sec]"}

    def _mi_which(self, command: str | None = None) -> list:
        if command is None:
            tracer = () if self.tracer is None else tuple(n for n in TRACER_NAMES if (":" in n) == self.is_40)
            return list(COMMANDS_40 if self.is_40 else COMMANDS_34) + list(tracer)
        name = self.resolve(command) if isinstance(command, str) else None
        if name is None:
            raise MiError(404, "Unknown command")  # not captured: shape of the other 404s
        return [list(signature) for signature in SIGNATURES[name]]

    def _mi_ps(self) -> dict:
        udp = "udp:127.0.0.1:5060"
        kinds = ["attendant", f"HTTPD {self.httpd}", "MI FIFO", "time_keeper", "timer"] + \
            [f"SIP receiver {udp}"] * 4 + ["TCP receiver"] * 4 + ["Timer handler", "TCP main"]
        if self.tracer is not None:  # proto_hep's hep_udp socket has receivers of its own
            kinds[5:5] = ["SIP receiver hep_udp:127.0.0.1:9060"] * 2
        base = 27293
        return {"Processes": [{"ID": i, "PID": base + i, "Type": kind} for i, kind in enumerate(kinds)]}

    def _mi_help(self, mi_cmd: Any) -> dict:
        name = self.resolve(mi_cmd) if isinstance(mi_cmd, str) else None
        if name is None:
            raise MiError(404, "Unknown command")
        module = {"ul_": "usrloc", "dlg": "dialog", "pro": "dialog", "rtp": "rtpengine"}.get(name[:3], "core")
        return {"Help": "not available for this command", "Exported by": module}

    def _mi_httpd_list_root_path(self) -> list:
        return [{"http_root": "mi", "module": "mi_http"}]

    def _mi_rtpengine_show(self) -> list:
        return [{"Set": 0, "Nodes": [{"url": self.rtpengine_url, "index": 0, "disabled": 0, "weight": 1,
                                      "recheck_ticks": 0}]}]

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> dict[str, int]:
        """Every counter, keyed "group:name", in the "all" order."""
        state = self.state
        contacts = state.contact_count
        active, early = state.dialog_counts()
        counters = state.counters
        used = 4_345_032 + 1_200 * contacts + 10_240 * len(state.dialogs)
        total = 536_870_912
        values: dict[str, int] = {}
        dynamic = {
            "shmem:total_size": total, "shmem:used_size": used, "shmem:real_used_size": used + 155_560,
            "shmem:max_used_size": used + 274_960, "shmem:free_size": total - used - 155_560,
            "shmem:fragments": 2_000 + contacts * 2,
            "core:timestamp": state.uptime,
            "usrloc:registered_users": contacts, "usrloc:location-users": contacts,
            "usrloc:location-contacts": contacts,
            "registrar:max_expires": 7200, "registrar:default_expire": 3600,
            "dialog:active_dialogs": active, "dialog:early_dialogs": early,
            "tm:inuse_transactions": early,
            "load:processes_number": 15,
        }
        for group, names in STAT_GROUPS.items():
            for name in names:
                key = f"{group}:{name}"
                if key in dynamic:
                    values[key] = dynamic[key]
                elif group == "pkmem":
                    values[key] = _pkmem(name)
                elif group == "load":
                    values[key] = (len(state.dialogs) + state.now) % 3 if "proc" not in name else 0
                else:
                    values[key] = counters.get(key)
        values["core:rcv_replies"] = counters.get("core:rcv_replies")
        values["tm:received_replies"] = values["tm:relayed_replies"] = values["core:rcv_replies"]
        values["sl:sent_replies"] = values["sl:2xx_replies"] = counters.get("sl:2xx_replies")
        return values

    def _mi_get_statistics(self, statistics: Any) -> dict:
        if not isinstance(statistics, list):
            raise _bad_params("Bad type for parameter 'statistics'")
        everything = self.statistics()
        out: dict[str, int] = {}
        for item in statistics:
            if not isinstance(item, str):
                continue
            if item == "all":
                out.update(everything)
            elif item.endswith(":"):
                group = item[:-1]
                out.update({f"{group}:{n}": everything[f"{group}:{n}"] for n in STAT_GROUPS.get(group, ())})
            elif item in _STAT_GROUP_OF:  # a bare name; "group:name" returns nothing (3.4 quirk)
                key = f"{_STAT_GROUP_OF[item]}:{item}"
                out[key] = everything[key]
        return out

    # ------------------------------------------------------------------ usrloc

    def contact_entry(self, contact: SimContact) -> dict:
        return {
            "Contact": contact.uri,
            "ContactID": str(contact.contact_id),
            "Expires": max(0, contact.expires_at - self.state.now),
            "Q": "",
            "Callid": contact.callid,
            "Cseq": contact.cseq,
            "User-agent": contact.user_agent,
            "State": "CS_NEW",
            "Flags": 0,
            "Cflags": contact.cflags,
            "Socket": contact.socket,
            "Methods": 4294967295,
        } | ({"Received": contact.received} if contact.received else {})

    def _mi_ul_dump(self, brief: Any = None) -> dict:
        key = self.state.aor_key
        by_aor: dict[str, list[SimContact]] = {}  # one entry per AoR, however many contacts it has
        for contact in self.state.online_contacts():
            by_aor.setdefault(contact.aor, []).append(contact)
        if brief:
            aors = [{"AOR": key(aor)} for aor in by_aor]
        else:
            aors = [{"AOR": key(aor), "Contacts": [self.contact_entry(c) for c in contacts]}
                    for aor, contacts in by_aor.items()]
        return {"Domains": [{"name": "location", "hash_size": 512, "AORs": aors}]}

    def _mi_ul_show_contact(self, table_name: Any, aor: Any) -> dict:
        if table_name != "location":
            raise MiError(404, "Table not found")
        aor = str(aor)
        if self.is_40:
            if "@" not in aor:
                raise MiError(400, "Domain missing in AOR")
            user, _, domain = aor.partition("@")
            contacts = self.state.contacts_of(user if domain == "127.0.0.1" else aor)  # see DemoState.aor_key
        else:
            contacts = self.state.contacts_of(aor)
        if not contacts:
            raise MiError(404, "AOR not found")
        return {"AOR": aor, "Contacts": [self.contact_entry(c) for c in contacts]}

    def _mi_list_tcp_conns(self) -> dict:
        connections = []
        for contact in self.state.online_contacts():
            if not contact.conn_id:
                continue
            local = "127.0.0.1:8080" if contact.transport == "ws" else "127.0.0.1:5060"
            connections.append({
                "ID": contact.conn_id, "Type": contact.transport, "State": 0,
                "Remote": f"127.0.0.1:{contact.remote_port}", "Local": local,
                "Lifetime": _utc(contact.conn_touched + TCP_CONN_LIFETIME), "Alias port": contact.remote_port,
            })
        return {"Connections": connections}

    # ------------------------------------------------------------------ dialogs

    def dialog_entry(self, dialog: SimDialog, *, context: bool = False) -> dict:
        entry = {
            "ID": dialog.id, "db_id": dialog.db_id, "state": dialog.state, "user_flags": "",
            "timestart": dialog.start, "datestart": _utc(dialog.start),
            "timeout": dialog.start + DIALOG_LIFETIME, "dateout": _utc(dialog.start + DIALOG_LIFETIME),
            "callid": dialog.callid, "from_uri": dialog.from_uri, "to_uri": dialog.to_uri,
            "caller_tag": dialog.caller.tag, "caller_contact": dialog.caller.contact, "callee_cseq": "0",
            "caller_route_set": "", "caller_bind_addr": dialog.caller.bind_addr,
            "caller_sdp": dialog.caller.sdp, "caller_sent_sdp": dialog.caller.sent_sdp,
            "CALLEES": [],
        }
        if dialog.callee.tag:
            entry["CALLEES"].append({
                "callee_tag": dialog.callee.tag, "callee_contact": dialog.callee.contact, "caller_cseq": "1",
                "callee_route_set": "", "callee_bind_addr": dialog.callee.bind_addr,
                "callee_sdp": dialog.callee.sdp, "callee_sent_sdp": dialog.callee.sent_sdp,
            })
        if context:
            entry["context"] = {"profiles": [{"callsbyproto": dialog.profile_value}, {"calls": ""}]}
        return entry

    def _list(self, context: bool, callid: Any = None, from_tag: Any = None, index: Any = None,
              counter: Any = None) -> dict:
        dialogs = sorted(self.state.active_dialogs(), key=lambda d: (d.h_entry, d.h_id))
        if callid is not None:
            for dialog in dialogs:
                if dialog.callid == callid and (from_tag is None or dialog.caller.tag == from_tag):
                    return {"Dialog": self.dialog_entry(dialog, context=context)}
            raise MiError(404, "No such dialog")
        if index is not None:
            if not isinstance(index, int) or not isinstance(counter, int):
                raise _bad_params("Bad type for parameter 'index'")  # not captured
            page = dialogs[index:index + counter]
            return {"count": len(dialogs), "Dialogs": [self.dialog_entry(d, context=context) for d in page]}
        return {"Dialogs": [self.dialog_entry(d, context=context) for d in dialogs]}

    def _mi_dlg_list(self, **params) -> dict:
        return self._list(False, **params)

    def _mi_dlg_list_ctx(self, **params) -> dict:
        return self._list(True, **params)

    def _profile_dialogs(self, profile: Any, value: Any = None) -> list[SimDialog]:
        if profile not in PROFILES:
            raise MiError(404, "Profile not found")
        dialogs = self.state.active_dialogs()
        if profile == "callsbyproto" and value is not None:
            dialogs = [d for d in dialogs if d.profile_value == value]
        return dialogs

    def _mi_profile_get_size(self, profile: Any, value: Any = None) -> dict:
        count = len(self._profile_dialogs(profile, value))
        return {"Profile": {"name": profile, "value": value, "count": count, "shared": "no", "replicated": "no"}}

    def _mi_profile_get_values(self, profile: Any) -> list:
        dialogs = self._profile_dialogs(profile)
        counts: dict[str, int] = {}
        for dialog in dialogs:
            counts[dialog.profile_value] = counts.get(dialog.profile_value, 0) + 1
        return [{"value": value, "count": counts[value]} for value in sorted(counts)]

    def _mi_profile_list_dlgs(self, profile: Any, value: Any = None) -> dict:
        return {"Dialogs": [self.dialog_entry(d) for d in self._profile_dialogs(profile, value)]}

    def _mi_list_all_profiles(self) -> dict:
        return {"Profiles": [{"name": "calls", "has value": False}, {"name": "callsbyproto", "has value": True}]}

    # ------------------------------------------------------------------ events

    def _mi_event_subscribe(self, event: Any, socket: Any, expire: Any = 3600) -> str:
        if self.subscriptions is None:
            raise MiError(-32601, "Method not found")
        return self.subscriptions.subscribe(event, socket, expire)

    def _mi_subscribers_list(self, event: Any = None, socket: Any = None) -> dict:
        if self.subscriptions is None:
            raise MiError(-32601, "Method not found")
        return self.subscriptions.listing(event, socket)

    # ------------------------------------------------------------------ tracer

    def _traced(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:  # tracer.TraceError: the captured error shapes
            raise MiError(getattr(exc, "code", 500), getattr(exc, "message", str(exc)), getattr(exc, "data", None))

    def _mi_trace(self) -> dict:
        return self.tracer.listing()

    def _mi_trace_start(self, id: Any, uri: Any, filter: Any = None, scope: Any = None, type: Any = None) -> str:
        return self._traced(lambda: self.tracer.start(id, uri, filter, scope, type))

    def _mi_trace_stop(self, id: Any) -> str:
        return self._traced(lambda: self.tracer.stop(id))


def _pkmem(name: str) -> int:
    """Per-process private memory: constant-looking values like the capture."""
    kind = name.split("-", 1)[1]
    return {"total_size": 16_777_216, "used_size": 455_816, "real_used_size": 526_872,
            "max_used_size": 544_184, "free_size": 16_250_344, "fragments": 663}[kind]
