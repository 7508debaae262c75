"""The console's GC schedule (console/heap.py): frozen between sweeps, cycles reclaimed at a sweep."""

from __future__ import annotations

import gc
import weakref

import pytest

from console.heap import FrozenHeap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC can free it


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def heap():
    clock = Clock()
    yield FrozenHeap(clock), clock
    gc.unfreeze()  # the test process's heap is not ours to keep frozen


def test_what_survives_a_poll_is_frozen_and_left_alone(heap):
    frozen_heap, _ = heap
    survivor = Node()
    frozen_heap.after_poll()
    assert gc.get_freeze_count() > 0
    ref = weakref.ref(survivor)
    del survivor
    gc.collect()
    assert ref() is not None  # a frozen cycle is not collected between sweeps
    assert frozen_heap.sweeps == 0


def test_a_sweep_reclaims_cycles_that_died_frozen(heap):
    frozen_heap, clock = heap
    node = Node()
    frozen_heap.after_poll()
    ref = weakref.ref(node)
    del node
    clock.now += FrozenHeap.SWEEP_EVERY
    frozen_heap.after_poll()
    assert ref() is None and frozen_heap.sweeps == 1
    assert gc.get_freeze_count() > 0  # the survivors are frozen again
    frozen_heap.after_poll()
    assert frozen_heap.sweeps == 1  # the next sweep waits SWEEP_EVERY again


def test_settle_collects_young_garbage_and_freezes_without_walking_the_frozen(heap):
    frozen_heap, _ = heap
    old = Node()
    frozen_heap.after_poll()  # old is frozen now
    old_ref = weakref.ref(old)
    del old
    young = Node()
    young_ref = weakref.ref(young)
    del young
    survivor = Node()
    frozen_heap.settle()
    assert young_ref() is None  # the young dead cycle is collected...
    assert old_ref() is not None  # ...the frozen one waits for a sweep (settle does not unfreeze)
    assert not any(obj is survivor for obj in gc.get_objects())  # the survivor is frozen
    assert frozen_heap.sweeps == 0
