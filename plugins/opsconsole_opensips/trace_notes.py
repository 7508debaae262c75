"""What OpenSIPS says now about a traced call, asked over MI (the location table for a call that failed
for want of a registration, the dialog of a call still up): one plain line each, for the explanations."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from console.errors import OpsError, RemoteError

MICall = Callable[[str, Any], Awaitable[Any]]



async def location_note(call: MICall, aor: str, domain: str = "") -> str:
    """What the location table says about `aor` right now (the 404/408/480 question), in one line."""
    for key in (aor, f"{aor}@{domain}" if domain and "@" not in aor else ""):
        if not key:
            continue
        try:
            result = await call("ul_show_contact", {"table_name": "location", "aor": key})
        except RemoteError as exc:
            if exc.code == 404:
                return (f"location table: {key} has no contact registered right now — the callee's device is "
                        "not registered (or its registration expired)")
            if exc.code == 400 and domain:
                continue  # OpenSIPS 4.0: the AoR needs its domain
            return f"location table: not asked ({exc})"
        except OpsError as exc:
            return f"location table: not asked ({exc})"
        contacts = result.get("Contacts") if isinstance(result, dict) else None
        uris = [c.get("Contact", "?") for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else []
        return (f"location table: {key} is registered now with {len(uris)} contact(s) ({', '.join(uris[:3])}): "
                "the device was found but did not answer, or is not reachable at that contact")
    return ""


DIALOG_STATES = {1: "unconfirmed (no reply yet)", 2: "early (ringing)", 3: "answered, not yet ACKed",
                 4: "confirmed (answered and ACKed)", 5: "ended"}


async def dialog_note(call: MICall, callid: str) -> str:
    """What OpenSIPS's dialog module holds for `callid` right now (`dlg_list callid=`: one dialog, cheap)."""
    try:
        result = await call("dlg_list", {"callid": callid})
    except RemoteError as exc:
        if exc.code == 404:
            return "dialog in OpenSIPS: none now (ended, or never created by the script)"
        return f"dialog in OpenSIPS: not asked ({exc})"
    except OpsError as exc:
        return f"dialog in OpenSIPS: not asked ({exc})"
    dialog = result.get("Dialog") if isinstance(result, dict) else None
    if not isinstance(dialog, dict):
        return ""
    state = dialog.get("state")
    since = f" since {dialog['datestart']}" if isinstance(dialog.get("datestart"), str) else ""
    return f"dialog in OpenSIPS: state {state}, {DIALOG_STATES.get(state, 'unknown')}{since}"
