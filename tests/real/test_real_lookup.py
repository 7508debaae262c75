"""The `:` palette's "is user X registered?" (console/lookup.py) against a real OpenSIPS 3.4 and 4.0: a bare
user is found with ul_show_contact whether the AoR is the user (3.4 lab) or user@domain (4.0 lab), from a
partial list that holds one other contact; an unknown user is "not registered", not an error (#14 item 9)."""

from __future__ import annotations

import asyncio

import pytest

from console.lookup import ask_opensips, candidate_aors
from support.platform import UDP_USERS

from .test_real_tui import build_service

pytestmark = pytest.mark.opensips


def _contacts_of(platform) -> list[tuple[str, str]]:
    dump = platform.opensips.ul_dump()
    return [(aor["AOR"], contact["Contact"]) for domain in dump["Domains"] for aor in domain["AORs"]
            for contact in aor["Contacts"]]


async def test_a_bare_user_is_asked_for_and_found_on_a_partial_list(start_real_platform, opsconsole):
    platform = await asyncio.to_thread(start_real_platform)
    service = build_service(platform, opsconsole)
    try:
        truth = _contacts_of(platform)
        user = UDP_USERS[1]
        wanted = {contact for aor, contact in truth if aor.split("@")[0] == user}
        assert wanted
        snap = await service.snapshot()
        seen = tuple(c for c in snap.signalling.contacts if c.aor.split("@")[0] == UDP_USERS[0])  # a partial list
        aor, contacts = await ask_opensips(service, candidate_aors(user, seen))
        assert aor.split("@")[0] == user
        assert {c.contact for c in contacts} == wanted
        nobody, none = await ask_opensips(service, candidate_aors("99999", seen))
        assert none == () and nobody == "99999"
    finally:
        await service.aclose()


async def test_with_no_domain_known_a_bare_user_is_explained_not_crashed(start_real_platform, opsconsole):
    from console.ui.finder import user_sections

    platform = await asyncio.to_thread(start_real_platform)
    service = build_service(platform, opsconsole)
    try:
        aors = [aor for aor, _contact in _contacts_of(platform)]
        sections = await user_sections(service, candidate_aors(UDP_USERS[1], ()))  # nothing listed yet
        text = "\n".join(body.plain for _heading, body in sections)
        if any("@" in aor for aor in aors):  # usrloc with domains (the 4.0 lab): the bare user is refused
            assert "Domain missing" in text and "type the whole AoR" in text
        else:
            assert f"sip:{UDP_USERS[1]}@" in text
    finally:
        await service.aclose()
