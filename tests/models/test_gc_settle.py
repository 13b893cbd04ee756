"""A model load pauses the garbage collector and settles the imported library stack."""

from __future__ import annotations

import gc
import sys

import pytest

from pytest_llmeval.models import base


@pytest.fixture(autouse=True)
def _restore_gc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(base, "_SETTLED_MODULES", 0)
    monkeypatch.delenv("LLMEVAL_GC_FREEZE", raising=False)
    was = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if was else gc.disable)()


def test_loading_pauses_the_collector_and_restores_it_even_on_error() -> None:
    gc.enable()
    with base.loading("hf:x"):
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), base.loading("hf:x"):
        raise RuntimeError("the load failed")
    assert gc.isenabled()


def test_loading_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with base.loading("hf:x"):
        pass
    assert not gc.isenabled()


def test_settle_freezes_once_per_batch_of_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    base.settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # this process's imports: pytest, numpy, the package
    assert base._SETTLED_MODULES == len(sys.modules)
    junk = [[i] for i in range(5000)]  # built after the freeze: not frozen by a second call
    base.settle_heap()
    assert gc.get_freeze_count() == frozen
    monkeypatch.setattr(base, "_SETTLED_MODULES", len(sys.modules) - 500)  # as if 500 imports
    base.settle_heap()
    assert gc.get_freeze_count() >= frozen + len(junk)


def test_settle_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    monkeypatch.setenv("LLMEVAL_GC_FREEZE", "0")
    base.settle_heap()
    assert gc.get_freeze_count() == 0
    gc.enable()
    with base.loading("hf:x"):
        assert gc.isenabled()  # nor is the collector paused
