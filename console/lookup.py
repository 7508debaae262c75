"""Find a user, an AoR or a Call-ID in the live view, and ask OpenSIPS when the view cannot say.

Headless (no textual): the TUI's `:` palette uses it, any other face may.  The live contact list
may be partial (on a large platform it fills from events); there "not in the list" means nothing,
so a user is asked for directly (`ul_show_contact`: one AoR, cheap at any table size, where a dump
would hold OpenSIPS MI for minutes) — "is user X registered, and how?" answered in a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from console.model import Call, Contact

FIND_LIMIT = 20  # hits per kind: the palette shows a screenful
ASK_DOMAINS = 3  # user@domain candidates tried when a bare user is not an AoR by itself


@dataclass(frozen=True)
class Found:
    """One hit: `kind` 'contact' (key = contact key) or 'call' (key = Call-ID)."""

    kind: str
    key: str
    title: str
    detail: str


def find(view: Any, query: str, limit: int = FIND_LIMIT) -> list[Found]:
    """Contacts whose AoR, contact or user agent contains `query` and calls whose Call-ID, caller
    or callee does (case-insensitive), AoRs that start with it first."""
    needle = query.strip().lower()
    if not needle:
        return []
    return _contacts(view, needle, limit) + _calls(view.calls or (), needle, limit)


def _contacts(view: Any, needle: str, limit: int) -> list[Found]:
    index = view.contact_index
    if index is not None:
        matches: Sequence[Contact] = index.select(needle)
    else:
        matches = [c for c in view.contacts or () if needle in f"{c.aor}\n{c.contact}\n{c.user_agent}".lower()]
    ranked = sorted(matches[:limit * 5], key=lambda c: (not c.aor.lower().startswith(needle), c.aor))
    return [Found("contact", c.key, f"AoR {c.aor}", f"{(c.transport or '?').upper()}  {c.contact or '(contact not listed)'}"
                  f"  {c.user_agent}".rstrip()) for c in ranked[:limit]]


def _calls(calls: Sequence[Call], needle: str, limit: int) -> list[Found]:
    out = []
    for call in calls:
        dialog = call.dialog
        parties = f"{dialog.from_uri} -> {dialog.to_uri}" if dialog is not None else ""
        if needle in call.callid.lower() or needle in parties.lower():
            out.append(Found("call", call.callid, f"Call {call.callid}", parties or call.bridge or "media only"))
            if len(out) >= limit:
                break
    return out


def list_is_partial(view: Any) -> bool:
    """True when a contact missing from the view's list may still be registered."""
    if view.contacts is None:
        return True
    if view.contacts_mode in ("events-partial", "polling", "none", ""):
        return True
    registered = view.registered_count()
    return registered is not None and registered != len(view.contacts)


def candidate_aors(query: str, contacts: Sequence[Contact] | None) -> list[str]:
    """What to ask OpenSIPS for: the query as typed (an AoR, or a user with use_domain off), then
    user@domain for the domains the list shows (use_domain on)."""
    query = query.strip()
    names = [query]
    if "@" not in query:
        domains: list[str] = []
        for contact in contacts or ():
            domain = contact.aor.partition("@")[2]
            if domain and domain not in domains:
                domains.append(domain)
                if len(domains) >= ASK_DOMAINS:
                    break
        names += [f"{query}@{domain}" for domain in domains]
    return names


async def ask_opensips(service: Any, candidates: Sequence[str]) -> tuple[str, tuple[Contact, ...]]:
    """The first candidate AoR OpenSIPS has contacts for, with them; (first candidate, ()) when
    none is registered.  A candidate OpenSIPS refuses (a bare user where usrloc uses domains:
    "Domain missing in AOR") is skipped; when every candidate was refused the first refusal is
    raised (the caller shows it)."""
    refused: Exception | None = None
    answered = False
    for aor in candidates:
        try:
            contacts = tuple(await service.show_contacts(aor))
        except Exception as exc:  # the MI error of this candidate: the next may be the right form
            refused = refused or exc
            continue
        answered = True
        if contacts:
            return aor, contacts
    if not answered and refused is not None:
        raise refused
    return (candidates[0] if candidates else ""), ()
