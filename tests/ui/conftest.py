"""UI fixtures: a fake service on the lab captures and a frozen clock."""

from __future__ import annotations

import pytest

from console.ui.app import create_app

from .data import NOW, FakeService


class Clock:
    """A clock the test moves by hand (ages and countdowns stay deterministic)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def make_app(service, clock):
    """create_app with a poll interval long enough that only the test triggers polls."""

    def build(svc=None, **kwargs):
        kwargs.setdefault("interval", 3600)
        kwargs.setdefault("clock", clock)
        return create_app(svc or service, **kwargs)

    return build
