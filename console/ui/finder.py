"""The `:` palette finds users, AoRs and Call-IDs (a Textual command Provider, public API).

Hits come from the live view (console.lookup.find); when the contact list may be partial (or
nothing matched) a hit asks OpenSIPS for that user directly (ul_show_contact) instead of the
palette answering "No matches found"."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.command import Hit, Hits, Provider

from console.errors import OpsError
from console.lookup import Found, ask_opensips, candidate_aors, find, list_is_partial

from .calls import call_sections, live_call
from .messages import DetailRequested
from .registrations import contact_sections, live_contact
from .safe import safe_text

HIT_SCORE = 1.0  # every hit is a substring match: the list's own order ranks them
ASK_SCORE = 0.5


class FindProvider(Provider):
    """Users, AoRs and Call-IDs of the live view; OpenSIPS asked when the list cannot say."""

    async def search(self, query: str) -> Hits:
        query = query.strip()
        if len(query) < 2 and not query.isdigit():
            return
        app = self.app
        view = app.session.current_view()
        hits = find(view, query)
        for found in hits:
            yield Hit(HIT_SCORE, hit_label(found), lambda found=found: open_found(app, found),
                      text=found.title, help=found.detail)
        if list_is_partial(view) or not hits:
            why = "the contact list is partial" if list_is_partial(view) else "not in the contact list"
            yield Hit(ASK_SCORE, Text.assemble("Ask OpenSIPS: is ", safe_text(query, 60, style="bold"),
                                               " registered?"),
                      lambda: ask_user(app, query), text=f"Ask OpenSIPS about {query}",
                      help=f"{why}: ul_show_contact (one AoR, cheap at any table size)")


def hit_label(found: Found) -> Text:
    return Text.assemble(safe_text(found.title, 80, style="bold"), "  ", safe_text(found.detail, 80, style="dim"))


def open_found(app: Any, found: Found) -> None:
    """The hit's detail screen, following its row as the list changes."""
    view, now = app.session.current_view(), app.now()
    if found.kind == "call":
        call = view.call(found.key)
        if call is not None:
            app.post_message(DetailRequested(f"Call {safe_text(call.callid, 80).plain}", call_sections(call, now),
                                             live=live_call(call.callid)))
        return
    contact, _position = view.contact(found.key)
    if contact is not None:
        app.post_message(DetailRequested(f"Contact {safe_text(contact.aor, 80).plain}",
                                         contact_sections(contact, view.contacts_elapsed(now)),
                                         live=live_contact(contact.key)))


def ask_user(app: Any, query: str) -> None:
    """A detail screen that asks OpenSIPS for `query` (as an AoR, then user@domain)."""
    service, view = app.service, app.session.current_view()
    candidates = candidate_aors(query, view.contacts)
    waiting = [("Contacts", Text.assemble("asking OpenSIPS: ul_show_contact ", safe_text(query, 80), " …"))]
    app.post_message(DetailRequested(f"User {safe_text(query, 80).plain}", waiting,
                                     loader=lambda: user_sections(service, candidates)))


async def user_sections(service: Any, candidates: list[str]) -> list[tuple[str, Text]]:
    try:
        aor, contacts = await ask_opensips(service, candidates)
    except Exception as exc:  # shown, never raised: the console keeps running
        reason = str(exc) if isinstance(exc, OpsError) else f"{type(exc).__name__}: {exc}"
        out = Text.assemble(("FAIL ", "bold red"), "ul_show_contact: ", safe_text(reason, None))
        if "domain" in reason.lower() and not any("@" in name for name in candidates):
            out.append("\nOpenSIPS keeps AoRs as user@domain here (use_domain): type the whole AoR, e.g. "
                       f"{candidates[0]}@example.com", style="bold")
        return [("Contacts", out)]
    if not contacts:
        asked = ", ".join(candidates)
        return [("Contacts", Text.assemble(("NOT REGISTERED", "bold"), ": OpenSIPS has no contact for ",
                                           safe_text(asked, None), " (ul_show_contact, asked now)"))]
    sections = []
    for number, contact in enumerate(contacts, 1):
        for heading, body in contact_sections(contact):
            sections.append((f"{heading} {number} of {len(contacts)} of {safe_text(aor, 60).plain} "
                             f"(asked OpenSIPS now)", body))
    return sections
