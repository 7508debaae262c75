"""What the real daemons say, sampled over time, and what the TUI's screens say, parsed from the terminal text.

For tests/real/test_real_tui.py: the screens are compared with the daemons' own answers (OpenSIPS MI dlg_list,
get_statistics, ul_dump; RTPengine ng `list`), never with the product's snapshot.

    TruthSampler(platform)   a thread asking the daemons every SAMPLE_EVERY_S; `.around(t0, t1)` = the samples
                             of that moment (a screen read is judged against the whole moment's churn)
    calls_screen(text), registrations_screen(text), overview_screen(text), checks_screen(text)
                             the numbers and marks a screen shows (None where the screen shows none yet)
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

SAMPLE_EVERY_S = 0.2
EXPIRING_S = 1
DIALOG_DELETED = 5  # dlg_list state
TRANSPORTS = ("UDP", "TCP", "TLS", "WS", "WSS")


def _user(uri: str) -> str:
    """'sip:1004@127.0.0.1' -> '1004' (what the Calls screen shows)."""
    rest = uri.split(":", 1)[1] if ":" in uri[:5] else uri
    return rest.split("@", 1)[0]


@dataclass(frozen=True)
class Truth:
    """One moment as the daemons report it when asked directly."""

    at: float
    dialogs: dict[str, tuple[str, str]]   # Call-ID -> (caller user, callee user), dlg_list but state 5
                                          # (deleted: the call ended, OpenSIPS keeps it a moment)
    media: frozenset[str]                 # ng list
    active_dialogs: int                   # get_statistics dialog:active_dialogs
    early_dialogs: int
    registered: int                       # get_statistics usrloc:location-contacts (expired ones too)
    contacts_by_transport: Counter        # ul_dump, by the contact's socket protocol; not the ones it calls
                                          # "expired"/"deleted" (kept only until usrloc's timer runs)
    expiring_by_transport: Counter        # of those, the ones with <= EXPIRING_S left: OpenSIPS counts in
                                          # whole seconds, so a console may already have let them go
    expired: int                          # those ul_dump contacts

    @property
    def calls(self) -> int:
        return len(set(self.dialogs) | self.media)

    @property
    def dialogs_without_media(self) -> set[str]:
        return set(self.dialogs) - self.media

    @property
    def media_without_dialog(self) -> set[str]:
        return set(self.media) - set(self.dialogs)

    @property
    def contacts(self) -> int:
        return sum(self.contacts_by_transport.values())

    def contact_range(self, transport: str | None = None) -> tuple[int, int]:
        """(fewest, most) contacts a console may show now: expiring ones may be gone already."""
        if transport is None:
            return self.contacts - sum(self.expiring_by_transport.values()), self.contacts
        return (self.contacts_by_transport[transport] - self.expiring_by_transport[transport],
                self.contacts_by_transport[transport])


def _stat(stats: dict, name: str) -> int:
    return int(stats.get(name, 0))


def ask_daemons(platform) -> Truth:
    dialogs = {d["callid"]: (_user(d["from_uri"]), _user(d["to_uri"]))
               for d in platform.opensips.dialogs() if d["state"] != DIALOG_DELETED}
    stats = platform.opensips.mi_any("get_statistics", "statistics:get", params={"statistics": ["dialog:", "usrloc:"]})
    by_transport: Counter = Counter()
    expiring: Counter = Counter()
    expired = 0
    for aor in platform.opensips.ul_dump()["Domains"][0]["AORs"]:
        for contact in aor["Contacts"]:
            if contact["Expires"] in ("expired", "deleted"):
                expired += 1
            else:
                transport = contact["Socket"].split(":", 1)[0].upper()
                by_transport[transport] += 1
                if isinstance(contact["Expires"], int) and contact["Expires"] <= EXPIRING_S:
                    expiring[transport] += 1
    return Truth(at=time.monotonic(), dialogs=dialogs, media=frozenset(platform.ng_calls()),
                 active_dialogs=_stat(stats, "dialog:active_dialogs"),
                 early_dialogs=_stat(stats, "dialog:early_dialogs"),
                 registered=_stat(stats, "usrloc:location-contacts"), contacts_by_transport=by_transport,
                 expiring_by_transport=expiring, expired=expired)


@dataclass
class TruthSampler:
    """Asks the daemons every SAMPLE_EVERY_S in a thread (the blocking clients stay off the TUI's loop)."""

    platform: object
    samples: list[Truth] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="truth-sampler", daemon=True)

    def __enter__(self) -> TruthSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(ask_daemons(self.platform))
            except Exception as exc:  # noqa: BLE001 - reported by the test, not swallowed
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(SAMPLE_EVERY_S)

    def around(self, start: float, end: float) -> list[Truth]:
        """The samples taken between start and end (monotonic), plus the last one before start."""
        before = [s for s in self.samples if s.at < start]
        return before[-1:] + [s for s in self.samples if start <= s.at <= end]

    def wait_past(self, moment: float, timeout: float = 10.0) -> None:
        """Until a sample newer than `moment` exists ("ask right after the read")."""
        deadline = time.monotonic() + timeout
        while not any(s.at > moment for s in self.samples):
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer from the daemons since the read: {self.errors[-3:]}")
            time.sleep(0.05)


# ------------------------------------------------------------ screens


@dataclass(frozen=True)
class CallsScreen:
    calls: int | None
    without_media: int | None
    without_dialog: int | None
    not_matched: int
    no_media_rows: list[tuple[str, str]]   # (caller, callee) of rows marked NO MEDIA
    no_dialog_rows: list[str]              # the (clipped) Call-ID shown in rows marked NO DIALOG


_CALLS_STATUS = re.compile(r"(\d+) calls, (\d+) without media, (\d+) media without dialog"
                           r"(?:, (\d+) not matched yet)?")


def calls_screen(text: str) -> CallsScreen:
    match = _CALLS_STATUS.search(text)
    no_media, no_dialog = [], []
    for line in text.splitlines():
        cells = line.split()
        if "NO MEDIA" in line and len(cells) >= 2:
            no_media.append((cells[0], cells[1]))
        elif "NO DIALOG" in line and cells:
            no_dialog.append(cells[0].rstrip("…"))
    if match is None:
        return CallsScreen(None, None, None, 0, no_media, no_dialog)
    calls, without_media, without_dialog, unmatched = match.groups()
    return CallsScreen(int(calls), int(without_media), int(without_dialog), int(unmatched or 0), no_media, no_dialog)


@dataclass(frozen=True)
class RegistrationsScreen:
    contacts: int | None
    rows_by_transport: Counter


_CONTACTS = re.compile(r"^\s*(\d+) contacts\b", re.MULTILINE)
_REG_ROW = re.compile(r"^\s*\S+\s+(UDP|TCP|TLS|WSS|WS)\b")


def registrations_screen(text: str) -> RegistrationsScreen:
    match = _CONTACTS.search(text)
    rows: Counter = Counter()
    for line in text.splitlines():
        row = _REG_ROW.match(line)
        if row:
            rows[row.group(1)] += 1
    return RegistrationsScreen(int(match.group(1)) if match else None, rows)


@dataclass(frozen=True)
class OverviewScreen:
    active_dialogs: int | None
    early_dialogs: int | None
    registered: int | None
    by_transport: dict[str, int] | None
    sessions: int | None
    checks: str | None          # the Checks box: overall word and its counts ("OK  13 OK, 2 SKIP")


def _number(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def overview_screen(text: str) -> OverviewScreen:
    dialogs = re.search(r"dialogs\s+(\d+) active, (\d+) early", text)
    transports = re.search(r"by transport\s+" + r"\s+".join(rf"{t} (\d+)" for t in TRANSPORTS), text)
    return OverviewScreen(
        active_dialogs=int(dialogs.group(1)) if dialogs else None,
        early_dialogs=int(dialogs.group(2)) if dialogs else None,
        registered=_number(r"registered\s+(\d+)", text),
        by_transport=dict(zip(TRANSPORTS, map(int, transports.groups()))) if transports else None,
        sessions=_number(r"sessions\s+(\d+)", text),
        checks=checks.group(1).strip(" │") if (checks := re.search(
            r"Checks\s+((?:OK|SKIP|UNKNOWN|WARN|FAIL)\b.*)$", text, re.MULTILINE)) else None,
    )


_CHECK_ROW = re.compile(r"^\s*(OK|SKIP|UNKNOWN|WARN|FAIL)\s+([a-z0-9_]+\.[a-z0-9_.]+)\s", re.MULTILINE)


def checks_screen(text: str) -> dict[str, str]:
    """check id -> status (lower case, as in diagnose --json) for every row of the Checks screen."""
    return {cid: word.lower() for word, cid in _CHECK_ROW.findall(text)}


def host_rtpengines() -> frozenset[int]:
    """PIDs of every rtpengine on this host (other tests' too): host-wide checks look at all of them."""
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/comm").read().strip() == "rtpengine":
                pids.add(int(entry))
        except OSError:
            continue  # ended meanwhile
    return frozenset(pids)
