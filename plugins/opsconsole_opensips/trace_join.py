"""What a capture tool cannot say: a traced call joined with the platform's own state (I/O-free).

A ladder shows the messages; the console also holds OpenSIPS's location table, its dialogs and
RTPengine's media sessions.  `join_lines` takes one traced flow (ladder.CallFlow) and what the
console knows now (a console.live_state.LiveView, or anything with the same `contacts`,
`contacts_mode`, `dialogs`, `media` and `call(callid)`), and says in one line each:
- the callee's registration: in the location table now, over which transport, how many contacts;
- the dialog OpenSIPS holds for the Call-ID (state, age);
- RTPengine's media of the same Call-ID: packets each way, and the call quality (MOS, one-way,
  silent) when the console's call_quality has it.
Unknown stays unknown: a list not fetched (None) or partial is said to be so, never "not registered".
Lines are plain text (from the wire: untrusted); renderers escape them.
"""

from __future__ import annotations

from typing import Any

from console.model import Call, Contact, call_quality

from .ladder import CallFlow

COMPLETE_CONTACT_MODES = ("full", "events")  # the whole location table (else: partial or none)
DIALOG_WORDS = {1: "unconfirmed", 2: "early (ringing)", 3: "answered, not yet ACKed", 4: "confirmed", 5: "ended"}


def join_lines(flow: CallFlow, view: Any, now: float, *, mos_poor: float = 3.5,
               silent_after_s: float = 10.0) -> tuple[str, ...]:
    """The flow joined with the platform's state now ('' lines dropped); () without a view."""
    if view is None or flow.first_request is None:
        return ()
    first = flow.first_request.sip
    if flow.kind == "REGISTER":
        return tuple(line for line in (registration_line(view, first.to_user or first.from_user, "user"),) if line)
    if flow.kind != "INVITE":
        return ()
    callee = first.to_user or _uri_user(first.request_uri)
    call = view.call(flow.call_id)
    began = flow.first_request.time
    lines = (registration_line(view, callee, "callee"), dialog_line(view, call, now, began),
             media_line(view, call, now, began, mos_poor=mos_poor, silent_after_s=silent_after_s))
    return tuple(line for line in lines if line)


def registration_line(view: Any, user: str, role: str) -> str:
    """'callee 1002: registered now over UDP (1 contact: sip:1002@…)' or why it is not known."""
    if not user:
        return ""
    contacts = getattr(view, "contacts", None)
    if contacts is None:
        return f"{role} {user}: registration unknown (the contact list is not loaded; open Registrations)"
    found = contacts_by_user(contacts).get(user, [])
    complete = getattr(view, "contacts_mode", "") in COMPLETE_CONTACT_MODES
    if not found:
        if not complete:
            return f"{role} {user}: not in the contacts known now (the list is partial: unknown, not absent)"
        return f"{role} {user}: NOT registered now (not in OpenSIPS's location table)"
    transports = sorted({_transport(c) for c in found})
    shown = ", ".join(c.contact for c in found[:2]) + (" …" if len(found) > 2 else "")
    return (f"{role} {user}: registered now over {'/'.join(transports)} "
            f"({len(found)} contact{'s' if len(found) != 1 else ''}: {shown})")


def listed_before(view: Any, name: str, began: float) -> bool:
    """The view's list `name` ('dialogs', 'media') was fetched before the call began: its silence
    about the call says nothing yet."""
    at = getattr(view, f"{name}_at", None)
    return at is not None and at < began


_BY_USER: list = [None, {}]  # the last contact list seen and its index: the screen re-joins every second


def contacts_by_user(contacts: tuple[Contact, ...]) -> dict[str, list[Contact]]:
    """user -> contacts, built once per contact list (100k contacts: one pass, not one per call per tick)."""
    if _BY_USER[0] is not contacts:
        index: dict[str, list[Contact]] = {}
        for contact in contacts:
            index.setdefault(aor_user(contact.aor), []).append(contact)
        _BY_USER[:] = [contacts, index]
    return _BY_USER[1]


def dialog_line(view: Any, call: Call | None, now: float, began: float = 0.0) -> str:
    dialog = call.dialog if call is not None else None
    if dialog is None and listed_before(view, "dialogs", began):
        return "dialog in OpenSIPS: not known yet (the dialog list is older than the call; next poll)"
    if dialog is not None:
        age = f", {int(max(0.0, now - dialog.start))} s old" if dialog.start else ""
        return f"dialog in OpenSIPS: {DIALOG_WORDS.get(dialog.state, f'state {dialog.state}')}{age}"
    if getattr(view, "dialogs", None) is None or (call is not None and not call.dialog_known):
        return "dialog in OpenSIPS: unknown (the dialog list is not current)"
    return "dialog in OpenSIPS: none now (ended, or not created by the script)"


def media_line(view: Any, call: Call | None, now: float, began: float = 0.0, *, mos_poor: float,
               silent_after_s: float) -> str:
    media = call.media if call is not None else None
    if media is None and listed_before(view, "media", began):
        return "media in RTPengine: not known yet (the session list is older than the call; next poll)"
    if media is None:
        if getattr(view, "media", None) is None or (call is not None and not call.media_known):
            return "media in RTPengine: unknown (the session list is not current)"
        return "media in RTPengine: no session with this Call-ID (not relayed, or already deleted)"
    caller, callee = _legs(call)
    packets = (f"caller sent {_packets(caller)} packets, callee sent {_packets(callee)}"
               if caller is not None or callee is not None else "no legs yet")
    quality = call_quality(call, now, mos_poor=mos_poor, silent_after_s=silent_after_s)
    return f"media in RTPengine: {packets}; quality {quality.state.value}" + (
        f" ({quality.reason})" if quality.reason else "")


def aor_user(aor: str) -> str:
    """'sip:alice@example.com' / 'alice@example.com' / 'alice' -> 'alice'."""
    rest = aor.split(":", 1)[1] if aor.startswith(("sip:", "sips:")) else aor
    return rest.split("@", 1)[0]


def _uri_user(uri: str) -> str:
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


def _transport(contact: Contact) -> str:
    if contact.transport:
        return contact.transport.upper()
    return contact.socket.split(":", 1)[0].upper() if ":" in contact.socket else "?"


def _legs(call: Call):
    media, dialog = call.media, call.dialog
    if dialog is not None:
        caller = media.leg(dialog.caller.tag)
        callee = media.leg(dialog.callee.tag) if dialog.callees else None
        if caller is not None or callee is not None:
            return caller, callee
    legs = list(media.legs)
    return (legs[0] if legs else None), (legs[1] if len(legs) > 1 else None)


def _packets(leg) -> str:
    return "?" if leg is None else str(leg.packets)
