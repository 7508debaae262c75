"""fast_constructor gives genuine, frozen model instances (or falls back to the class)."""

import dataclasses
from dataclasses import dataclass, field

import pytest

from console.model import Contact
from opsconsole_opensips.fastbuild import fast_constructor
from opsconsole_opensips.parse import parse_contacts


def test_contact_builder_matches_the_real_constructor():
    build = fast_constructor(Contact)
    assert build is not Contact
    fast = build("a", "sip:a@h", socket="ws:1.2.3.4:80", cflags=("DST_WS",), expires=None, expires_state="permanent")
    real = Contact("a", "sip:a@h", socket="ws:1.2.3.4:80", cflags=("DST_WS",), expires=None, expires_state="permanent")
    assert type(fast) is Contact and fast == real and hash(fast) == hash(real) and repr(fast) == repr(real)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.aor = "b"


def test_parsed_contacts_are_real_contacts():
    raw = {"Domains": [{"AORs": [{"AOR": "a", "Contacts": [
        {"Contact": "sip:a@h:1;transport=tcp", "ContactID": "1", "Expires": 5, "Q": "", "Callid": "c", "Cseq": 2,
         "User-agent": "ua", "State": "CS_NEW", "Flags": 0, "Cflags": "", "Socket": "tcp:h:5060", "Methods": 3}]}]}]}
    (contact,) = parse_contacts(raw, "t")
    assert type(contact) is Contact
    assert contact == Contact("a", "sip:a@h:1;transport=tcp", "1", "tcp:h:5060", "tcp", False, 0, (), "", "", "ua", 5,
                              "", "c", 2, "", "CS_NEW", 3, "t")


def test_defaults_and_factories():
    @dataclass(frozen=True, slots=True)
    class Sample:
        name: str
        tags: tuple = ()
        extra: dict = field(default_factory=dict)

    build = fast_constructor(Sample)
    first, second = build("x"), build("y")
    assert first == Sample("x") and first.extra == {} and first.extra is not second.extra


def test_falls_back_without_slots():
    @dataclass(frozen=True)
    class Plain:
        name: str

    assert fast_constructor(Plain) is Plain
