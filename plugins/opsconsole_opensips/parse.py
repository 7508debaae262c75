"""OpenSIPS MI results (already JSON-decoded) -> console.model dataclasses.

Shapes are those of the captures in tests/fixtures/opensips-{3.4,4.0}/mi (see
its README).  Every malformed shape raises ProtocolError; nothing else escapes.
`parse_contacts` is the hot path (100k contacts): no regex, positional
construction, one pass; it takes generic JSON or a `wire.WireDump` (ul_dump
decoded typed, straight from its bytes).
"""

from __future__ import annotations

import dataclasses
import operator
import pickle
import sys
import time
from typing import Any, Callable, Iterable, TypeVar

from console.errors import ProtocolError
from console.heap import release_free_heap  # noqa: F401  (re-exported for the collectors)
from console.model import Connection, Contact, Dialog, DialogLeg, RelayNode, SignallingOverview, SipCounters

from .commands import parse_server_version, parse_which  # noqa: F401  (re-exported)
from .fastbuild import fast_constructor
from .wire import is_wire_dump

DEFAULT_WS_FLAGS = frozenset({"DST_WS", "WS"})
_WS_TRANSPORTS = frozenset({"ws", "wss"})
_EXPIRES_STATES = frozenset({"permanent", "expired", "deleted"})

T = TypeVar("T")

_new_contact = fast_constructor(Contact)  # same result as Contact(...), ~6x cheaper


def _guard(what: str, func: Callable[[], T]) -> T:
    """Run a parser body; turn any shape surprise into a ProtocolError."""
    try:
        return func()
    except ProtocolError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as exc:
        raise ProtocolError(f"unexpected {what} shape from OpenSIPS MI: {type(exc).__name__}: {exc}") from None


def _str(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"MI field {name!r} should be a string, got {type(value).__name__}")


def _int(value: Any, name: str, default: int | None = 0) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise ProtocolError(f"MI field {name!r} should be an integer, got {value!r:.60}")


def _float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ProtocolError(f"MI field {name!r} should be a number, got {value!r:.60}")


def _list(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise ProtocolError(f"MI field {name!r} should be a list, got {type(value).__name__}")
    return value


def _dict(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"MI field {name!r} should be an object, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- contacts


def shared_text(text: str) -> str:
    """One shared object for a string many contacts repeat (user agent, socket, q, state)."""
    return sys.intern(text) if type(text) is str else text


def transport_of(socket: str) -> str:
    """'ws:127.0.0.1:8080' -> 'ws'."""
    proto, sep, _ = socket.partition(":")
    return proto.lower() if sep else ""


def uri_transport(uri: str) -> str:
    """';transport=' parameter of a SIP URI, lower-cased, '' when absent."""
    lowered = uri.lower()
    start = lowered.find(";transport=")
    if start < 0:
        return ""
    value = lowered[start + 11:]
    for stop in (";", ">", "?", " "):
        value = value.partition(stop)[0]
    return value


def parse_contacts(ul_dump_result: Any, target: str = "", *,
                   ws_flags: Iterable[str] = DEFAULT_WS_FLAGS) -> tuple[Contact, ...]:
    """`ul_dump` / `usrloc:dump` result (or one `ul_show_contact` result) -> contacts.
    The result is generic JSON, or a `wire.WireDump` when the client decoded it typed."""
    ws_set = frozenset(ws_flags)
    build = _build_wire_contacts if is_wire_dump(ul_dump_result) else _build_contacts
    return _guard("ul_dump", lambda: build(ul_dump_result, target, ws_set))


def _aor_entries(result: Any) -> Iterable[dict]:
    result = _dict(result, "result")
    if "AOR" in result:  # ul_show_contact: a single AOR entry
        return (result,)
    entries: list[dict] = []
    for domain in _list(result.get("Domains"), "Domains"):
        entries.extend(_list(_dict(domain, "Domains[]").get("AORs"), "AORs"))
    return entries


# The keys every contact of a full ul_dump carries (Received/Path/Attr only when set;
# Socket absent for MI-added contacts), in one C-level lookup for the hot path.
_REQUIRED_KEYS = ("Contact", "ContactID", "Expires", "Q", "Callid", "Cseq", "User-agent", "State", "Flags",
                  "Cflags", "Socket", "Methods")
_required = operator.itemgetter(*_REQUIRED_KEYS)


def _expires_fields(expires: Any) -> tuple[int | None, str]:
    """Expires that is not plain seconds -> (seconds left or None, expires state)."""
    if expires in _EXPIRES_STATES:
        return None, expires
    return _int(expires, "Expires", None), ""


def _contact_fields(c: dict) -> tuple:
    """Slow path: missing keys get defaults, odd types are converted or rejected."""
    get = c.get
    expires, state = get("Expires"), ""
    if type(expires) is not int:
        expires, state = _expires_fields(expires)
    methods = get("Methods")
    uri, socket = c["Contact"], get("Socket", "")
    if type(uri) is not str or type(socket) is not str:
        raise ProtocolError("MI ul_dump: Contact/Socket should be strings")
    return (uri, _str(get("ContactID", ""), "ContactID"), expires, state, _str(get("Q", ""), "Q"),
            _str(get("Callid", ""), "Callid"), _int(get("Cseq", 0), "Cseq"), _str(get("User-agent", ""), "User-agent"),
            _str(get("State", ""), "State"), _int(get("Flags", 0), "Flags"), get("Cflags", ""), socket,
            None if methods is None else _int(methods, "Methods", None))


class _ContactMaker:
    """The last step both dump decoders share.  Caches the few distinct sockets and flag
    strings of a dump, and shares one string object for what thousands of contacts repeat."""

    __slots__ = ("target", "ws_flags", "transports", "flag_sets")

    def __init__(self, target: str, ws_flags: frozenset[str]) -> None:
        self.target, self.ws_flags = target, ws_flags
        self.transports: dict[str, str] = {}
        self.flag_sets: dict[str, tuple[tuple[str, ...], bool]] = {"": ((), False)}

    def __call__(self, aor: str, uri: str, cid: str, expires: int | None, state: str, q: str, callid: str,
                 cseq: int, ua: str, cstate: str, flags: int, cflags_text: Any, socket: str, methods: int | None,
                 received: str, path: str) -> Contact:
        share = sys.intern  # every value shared here is a str by now (checked by both decoders)
        if socket:
            transport = self.transports.get(socket)
            if transport is None:
                transport = self.transports[socket] = transport_of(socket)
            socket = share(socket)
        else:
            transport = uri_transport(uri)
        flag_info = self.flag_sets.get(cflags_text) if type(cflags_text) is str else None
        if flag_info is None:
            names = tuple(_str(cflags_text, "Cflags").split())
            flag_info = (names, not self.ws_flags.isdisjoint(names))
            if type(cflags_text) is str:
                self.flag_sets[cflags_text] = flag_info
        cflags, ws = flag_info
        # Thousands of contacts carry the same user agent, socket, q and state: one string
        # object each instead of one decoded copy per contact (~30 MB at 100k).
        if received:
            received = share(received)
        return _new_contact(aor, uri, cid, socket, transport, ws or transport in _WS_TRANSPORTS, flags, cflags,
                            received, path, share(ua), expires, state, callid, cseq, share(q), share(cstate),
                            methods, self.target)


def _build_contacts(result: Any, target: str, ws_flags: frozenset[str]) -> tuple[Contact, ...]:
    # Generic JSON (no msgspec, or an unusual reply): one C-level lookup of the usual keys,
    # plain type checks; anything unusual takes the slow path, which validates every field.
    make = _ContactMaker(target, ws_flags)
    out: list[Contact] = []
    append = out.append
    required = _required
    for entry in _aor_entries(result):
        aor = entry["AOR"]
        if type(aor) is not str:
            raise ProtocolError("MI ul_dump: AOR should be a string")
        contacts = entry.get("Contacts")
        if contacts is None:  # brief=1: AOR names only
            continue
        if type(contacts) is not list:
            raise ProtocolError("MI ul_dump: Contacts should be a list")
        for c in contacts:
            try:
                uri, cid, expires, q, callid, cseq, ua, cstate, flags, cflags_text, socket, methods = required(c)
                fast = (type(uri) is str and type(cid) is str and type(expires) is int and type(q) is str
                        and type(callid) is str and type(cseq) is int and type(ua) is str and type(cstate) is str
                        and type(flags) is int and type(socket) is str and type(methods) is int)
            except KeyError:
                fast = False
            if fast:
                state = ""
            else:
                (uri, cid, expires, state, q, callid, cseq, ua, cstate, flags, cflags_text, socket,
                 methods) = _contact_fields(c)
            if not fast or len(c) > 12:  # optional keys present (or an unusual contact)
                received, path = c.get("Received", ""), c.get("Path", "")
                if type(received) is not str or type(path) is not str:
                    received, path = _str(received, "Received"), _str(path, "Path")
            else:
                received = path = ""
            append(make(aor, uri, cid, expires, state, q, callid, cseq, ua, cstate, flags, cflags_text, socket,
                        methods, received, path))
    return tuple(out)


def _build_wire_contacts(dump: Any, target: str, ws_flags: frozenset[str]) -> tuple[Contact, ...]:
    # Typed by msgspec already (wire.py): every field has its usual type, or it would not be here.
    make = _ContactMaker(target, ws_flags)
    out: list[Contact] = []
    append = out.append
    for domain in dump.domains:
        for entry in domain.aors:
            contacts = entry.contacts
            if contacts is None:  # brief dump
                continue
            aor = entry.aor
            for c in contacts:
                expires, state = c.expires, ""
                if type(expires) is not int:
                    expires, state = _expires_fields(expires)
                append(make(aor, c.contact, c.contact_id, expires, state, c.q, c.callid, c.cseq, c.user_agent,
                            c.state, c.flags, c.cflags, c.socket, c.methods, c.received, c.path))
    return tuple(out)


# A full dump's contacts keep ~4 strings each from the decoded reply, scattered over the
# heap between the reply's dead dicts: those survivors pin the pages, so RSS stays at the
# full-sync peak (bench/bench_memory.py: 209 MB at 100k).  Packing the contacts' values,
# dropping the reply, then rebuilding them lays them out densely.  Packed by column: the
# rebuild maps the constructor over the columns (no per-contact tuple left between the
# contacts), and equal numbers (seconds left, flags, methods) become one object each.
_CONTACT_FIELDS = tuple(f.name for f in dataclasses.fields(Contact))
_NUMBER_FIELDS = frozenset(f.name for f in dataclasses.fields(Contact) if "int" in str(f.type))


def pack_contacts(contacts: Iterable[Contact]) -> bytes:
    """Contacts -> compact bytes for `unpack_contacts` (our own data only, never wire input)."""
    contacts = tuple(contacts)
    columns = [list(map(operator.attrgetter(name), contacts)) for name in _CONTACT_FIELDS]
    return pickle.dumps(columns, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_contacts(packed: bytes) -> tuple[Contact, ...]:
    columns = pickle.loads(packed)  # noqa: S301 - bytes we packed
    for name, column in zip(_CONTACT_FIELDS, columns):
        if name in _NUMBER_FIELDS:
            shared: dict = {}
            column[:] = map(shared.setdefault, column, column)
    return tuple(map(_new_contact, *columns))


def parse_aors(ul_dump_brief_result: Any) -> tuple[str, ...]:
    """`ul_dump brief=1` -> AOR names."""
    if is_wire_dump(ul_dump_brief_result):
        return tuple(entry.aor for domain in ul_dump_brief_result.domains for entry in domain.aors)
    return _guard("ul_dump brief", lambda: tuple(_str(e["AOR"], "AOR") for e in _aor_entries(ul_dump_brief_result)))


# --------------------------------------------------------------------------- dialogs


def sdp_media(sdp: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Ports and protocols of the m= lines: 'm=audio 30910 RTP/AVP 8 0' -> ((30910,), ('RTP/AVP',))."""
    ports: list[int] = []
    protocols: list[str] = []
    for line in sdp.split("\n"):
        if line.startswith("m="):
            parts = line.split()
            if len(parts) >= 3:
                port = parts[1].partition("/")[0]
                if port.isdecimal():
                    ports.append(int(port))
                protocols.append(parts[2])
    return tuple(ports), tuple(protocols)


def _leg(raw: dict, prefix: str, tag_key: str) -> DialogLeg:
    bind_addr = _str(raw.get(f"{prefix}_bind_addr"), f"{prefix}_bind_addr")
    sent_sdp = _str(raw.get(f"{prefix}_sent_sdp"), f"{prefix}_sent_sdp")
    ports, protocols = sdp_media(sent_sdp)
    return DialogLeg(
        tag=_str(raw.get(tag_key), tag_key),
        contact=_str(raw.get(f"{prefix}_contact"), f"{prefix}_contact"),
        bind_addr=bind_addr,
        transport=transport_of(bind_addr),
        sdp=_str(raw.get(f"{prefix}_sdp"), f"{prefix}_sdp"),
        sent_sdp=sent_sdp,
        media_ports=ports,
        media_protocols=protocols,
    )


def _profiles(raw: dict) -> tuple[tuple[str, str], ...]:
    context = raw.get("context")
    if context is None:
        return ()
    pairs: list[tuple[str, str]] = []
    for item in _list(_dict(context, "context").get("profiles", []), "context.profiles"):
        for name, value in _dict(item, "context.profiles[]").items():
            pairs.append((name, _str(value, "profile value")))
    return tuple(pairs)


def parse_dialog(raw: Any, target: str = "") -> Dialog:
    def build() -> Dialog:
        d = _dict(raw, "Dialog")
        callees = tuple(_leg(_dict(c, "CALLEES[]"), "callee", "callee_tag") for c in _list(d.get("CALLEES", []), "CALLEES"))
        return Dialog(
            id=_str(d["ID"], "ID"),
            callid=_str(d["callid"], "callid"),
            from_uri=_str(d.get("from_uri"), "from_uri"),
            to_uri=_str(d.get("to_uri"), "to_uri"),
            state=_int(d.get("state"), "state"),
            start=_int(d.get("timestart"), "timestart"),
            timeout=_int(d.get("timeout"), "timeout"),
            caller=_leg(d, "caller", "caller_tag"),
            callees=callees,
            profiles=_profiles(d),
            user_flags=_str(d.get("user_flags"), "user_flags"),
            target=target,
        )

    return _guard("dialog", build)


def parse_dialogs(dlg_list_result: Any, target: str = "") -> tuple[Dialog, ...]:
    """`dlg_list` / `dlg_list_ctx` result: {Dialogs: [...]} (count when paged) or {Dialog: {...}}."""
    def build() -> tuple[Dialog, ...]:
        result = _dict(dlg_list_result, "result")
        if "Dialog" in result:
            return (parse_dialog(result["Dialog"], target),)
        return tuple(parse_dialog(d, target) for d in _list(result.get("Dialogs"), "Dialogs"))

    return _guard("dlg_list", build)


def parse_dialog_count(dlg_list_result: Any) -> int | None:
    """Total number of dialogs when the list was paged (`count`), else None."""
    if isinstance(dlg_list_result, dict) and "count" in dlg_list_result:
        return _int(dlg_list_result["count"], "count", None)
    return None


# --------------------------------------------------------------------------- overview


_UPTIME_TIME_FORMAT = "%a %b %d %H:%M:%S %Y"


def parse_uptime(uptime_result: Any) -> int | None:
    """'Up time': '27 [sec]' -> 27; falls back to Now - 'Up since'."""
    result = _dict(uptime_result, "uptime result")
    up_time = result.get("Up time")
    if isinstance(up_time, str):
        number = up_time.partition("[")[0].strip()
        if number.isdecimal():
            return int(number)
    elif isinstance(up_time, int) and not isinstance(up_time, bool):
        return up_time
    since, now = result.get("Up since"), result.get("Now")
    if isinstance(since, str) and isinstance(now, str):
        try:
            seconds = time.mktime(time.strptime(now, _UPTIME_TIME_FORMAT)) - time.mktime(
                time.strptime(since, _UPTIME_TIME_FORMAT))
        except (ValueError, OverflowError):
            return None
        return max(0, int(seconds))
    return None


def _stat_int(stats: dict, key: str) -> int | None:
    return _int(stats.get(key), key, None) if key in stats else None


def _sum_stats(stats: dict, group: str, suffix: str) -> int | None:
    """usrloc keeps one counter per table: 'usrloc:location-contacts'."""
    values = [_int(v, k, 0) for k, v in stats.items() if k.startswith(group) and k.endswith(suffix)]
    return sum(values) if values else None


def parse_statistics(statistics: Any) -> dict[str, Any]:
    """`get_statistics` result -> {'group:name': number} (numbers as ints/floats where possible)."""
    def build() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in _dict(statistics, "statistics").items():
            if isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    try:
                        value = float(value)
                    except ValueError:
                        pass
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ProtocolError(f"statistic {key!r} is not a number")
            out[str(key)] = value
        return out

    return _guard("get_statistics", build)


_RETRANSMISSIONS = ("tm:retransmission_req_T1_1", "tm:retransmission_req_T1_2", "tm:retransmission_req_T1_3",
                    "tm:retransmission_req_T2", "tm:retransmission_rpl_T2")


def parse_sip_counters(stats: dict[str, Any], at: float) -> SipCounters | None:
    """`sl:` and `tm:` counters (a parse_statistics dict) -> SipCounters; None when neither group is there."""
    sl = tuple(_stat_int(stats, f"sl:{cls}_replies") for cls in ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx"))
    tm = tuple(_stat_int(stats, f"tm:{cls}_transactions") for cls in ("2xx", "3xx", "4xx", "5xx", "6xx"))
    if all(v is None for v in sl + tm):
        return None
    retrans = [value for key in _RETRANSMISSIONS if (value := _stat_int(stats, key)) is not None]
    return SipCounters(at=at, sl_replies=sl, tm_transactions=tm, retransmissions=sum(retrans) if retrans else None,
                       timeouts_inv=_stat_int(stats, "tm:timeout_finalresponse_inv"),
                       timeouts=_stat_int(stats, "tm:timeout_finalresponse"))


def parse_overview(version_result: Any = None, uptime_result: Any = None, statistics: Any = None,
                   at: float | None = None) -> SignallingOverview:
    """`at`: when the statistics were read (epoch s; default now), the time of the SIP counters."""
    def build() -> SignallingOverview:
        stats = parse_statistics(statistics) if statistics is not None else {}
        server = version = ""
        if version_result is not None:
            server = _str(_dict(version_result, "version result").get("Server"), "Server")
            version = parse_server_version(version_result)
        shm_used = _stat_int(stats, "shmem:real_used_size")
        if shm_used is None:
            shm_used = _stat_int(stats, "shmem:used_size")
        return SignallingOverview(
            server=server,
            version=version,
            uptime_s=parse_uptime(uptime_result) if uptime_result is not None else None,
            load=_float(stats.get("load:load"), "load:load"),
            load_1m=_float(stats.get("load:load1m"), "load:load1m"),
            shm_used=shm_used,
            shm_total=_stat_int(stats, "shmem:total_size"),
            active_dialogs=_stat_int(stats, "dialog:active_dialogs"),
            early_dialogs=_stat_int(stats, "dialog:early_dialogs"),
            processed_dialogs=_stat_int(stats, "dialog:processed_dialogs"),
            failed_dialogs=_stat_int(stats, "dialog:failed_dialogs"),
            inuse_transactions=_stat_int(stats, "tm:inuse_transactions"),
            registered_contacts=_sum_stats(stats, "usrloc:", "-contacts"),
            registered_users=_stat_int(stats, "usrloc:registered_users"),
            rcv_requests=_stat_int(stats, "core:rcv_requests"),
            rcv_replies=_stat_int(stats, "core:rcv_replies"),
            drop_requests=_stat_int(stats, "core:drop_requests"),
            err_requests=_stat_int(stats, "core:err_requests"),
            sip=parse_sip_counters(stats, time.time() if at is None else at),
        )

    return _guard("overview", build)


# --------------------------------------------------------------------------- relays / connections


def parse_relays(rtpengine_show_result: Any) -> tuple[RelayNode, ...]:
    """`rtpengine_show` / `rtpengine:show`: [{Set, Nodes: [{url, index, disabled, weight, recheck_ticks}]}]."""
    def build() -> tuple[RelayNode, ...]:
        nodes: list[RelayNode] = []
        for entry in _list(rtpengine_show_result, "rtpengine_show result"):
            entry = _dict(entry, "Set entry")
            set_id = _int(entry.get("Set"), "Set")
            for node in _list(entry.get("Nodes", []), "Nodes"):
                node = _dict(node, "Nodes[]")
                nodes.append(RelayNode(
                    url=_str(node["url"], "url"),
                    set_id=set_id,
                    index=_int(node.get("index"), "index"),
                    disabled=bool(_int(node.get("disabled"), "disabled")),
                    weight=_int(node.get("weight"), "weight", 1),
                    recheck_ticks=_int(node.get("recheck_ticks"), "recheck_ticks"),
                ))
        return tuple(nodes)

    return _guard("rtpengine_show", build)


def parse_connections(list_tcp_conns_result: Any) -> tuple[Connection, ...]:
    """`list_tcp_conns` / `tcp:list`: {Connections: [{ID, Type, State, Remote, Local, Lifetime, Alias port}]}."""
    def build() -> tuple[Connection, ...]:
        result = _dict(list_tcp_conns_result, "list_tcp_conns result")
        return tuple(
            Connection(
                id=_int(c["ID"], "ID"),
                type=_str(c.get("Type"), "Type").lower(),
                state=_int(c.get("State"), "State"),
                remote=_str(c.get("Remote"), "Remote"),
                local=_str(c.get("Local"), "Local"),
                lifetime=_str(c.get("Lifetime"), "Lifetime"),
                alias_port=_int(c.get("Alias port"), "Alias port"),
            )
            for c in (_dict(x, "Connections[]") for x in _list(result.get("Connections", []), "Connections"))
        )

    return _guard("list_tcp_conns", build)
