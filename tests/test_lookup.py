"""console.lookup: what the `:` palette finds and asks OpenSIPS (headless, #14 item 9)."""

from __future__ import annotations

import asyncio

import pytest

from console.lookup import ask_opensips, candidate_aors, list_is_partial
from console.live_state import LiveView
from console.model import Contact


class RefusingBareUsers:
    """show_contacts as OpenSIPS with use_domain: a bare user is an MI error, user@domain answers."""

    def __init__(self, registered: dict[str, tuple[Contact, ...]]) -> None:
        self.registered, self.asked = registered, []

    async def show_contacts(self, aor: str):
        self.asked.append(aor)
        if "@" not in aor:
            raise RuntimeError("MI command 'ul_show_contact' failed: Domain missing in AOR (code 400)")
        return self.registered.get(aor, ())


def test_candidates_are_the_query_then_user_at_each_known_domain():
    seen = (Contact(aor="1000@a.example", contact="sip:x@10.0.0.1"), Contact(aor="1001@a.example", contact="sip:x@10.0.0.1"), Contact(aor="2000@b.example", contact="sip:x@10.0.0.1"))
    assert candidate_aors(" 1042 ", seen) == ["1042", "1042@a.example", "1042@b.example"]
    assert candidate_aors("1042@c.example", seen) == ["1042@c.example"]


def test_a_refused_bare_user_is_skipped_for_user_at_domain():
    wanted = (Contact(aor="1042@a.example", contact="sip:1042@10.0.0.7:5060"),)
    service = RefusingBareUsers({"1042@a.example": wanted})
    assert asyncio.run(ask_opensips(service, ["1042", "1042@a.example"])) == ("1042@a.example", wanted)
    assert asyncio.run(ask_opensips(service, ["9", "9@a.example"])) == ("9", ())  # answered: not registered
    with pytest.raises(RuntimeError, match="Domain missing"):  # refused every time: said, not hidden
        asyncio.run(ask_opensips(service, ["9"]))


def test_a_list_that_cannot_say_not_registered_is_partial():
    contacts = (Contact(aor="1000", contact="sip:x@10.0.0.1"),)
    assert list_is_partial(LiveView(contacts=None))
    assert list_is_partial(LiveView(contacts=contacts, contacts_mode="events-partial"))
    assert not list_is_partial(LiveView(contacts=contacts, contacts_mode="full"))
