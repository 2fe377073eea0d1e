"""Bounded model checks (depth ≥ 20) of the matching engine's components with the YoWASP
SymbiYosys and Yices (``tickwire.sim.formal_checks``): each invariant holds, and a deliberately
broken component is caught with a counterexample. The checks that take minutes run under
``make regress``; the broken components are caught within seconds, under ``make test``."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from tickwire.hdl import occupancy_map
from tickwire.hdl.best_price import BestPriceCache
from tickwire.hdl.event_output import EventOutput
from tickwire.hdl.free_slot_stack import FreeSlotStack
from tickwire.hdl.level_lists import LevelLists
from tickwire.sim.bmc import BMC_ROOT, run_bmc
from tickwire.sim.formal_checks import (
    BOOK_PARAMS,
    CHECKS,
    best_price_harness,
    book_lists_harness,
    event_output_harness,
    occupancy_harness,
)


def _check(name, module, depth):
    return run_bmc(module, name=name, depth=depth,
                   workdir=BMC_ROOT / name.replace(" ", "_"))


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.regress] if seconds > 30 else [])
    for name, (_, _, seconds) in sorted(CHECKS.items())])
def test_invariant_holds(name):
    build, depth, _ = CHECKS[name]
    assert depth >= 20
    result = _check(name, build(), depth)
    assert result.passed, f"{name}: {result.status}, counterexample in {result.log.parent}"


class _OverwritingOutput(EventOutput):
    """Lets a new event overwrite one not yet taken (``can_emit`` ignores backpressure)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.emit.can_emit.eq(1)
        return m


class _UnlinkedAppend(LevelLists):
    """Forgets to link an order appended to an occupied level."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.op.append):
            m.d.comb += [self.links.next.en.eq(0), self.links.prev.en.eq(0)]
        return m


class NoDeferredNil(LevelLists):
    """Forgets the appended order's NIL ``next`` link (the write in the cycle after an
    append)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(~self.op.unlink & ~self.op.append):
            m.d.comb += self.links.next.en.eq(0)
        return m


class _StuckStack(FreeSlotStack):
    """Always offers slot 0, whether or not it was handed out."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.top.eq(0)
        return m


class _NeverDirty(wiring.Component):
    """The real registers, shown no clear: a best level that empties stays the best."""

    def __init__(self, symbols, band):
        self._inner = BestPriceCache(symbols, band)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        wiring.connect(m, wiring.flipped(self.search), inner.search)
        wiring.connect(m, wiring.flipped(self.lookup), inner.lookup)
        u = self.update
        m.d.comb += [inner.update.en.eq(u.en & u.value), inner.update.sym.eq(u.sym),
                     inner.update.side.eq(u.side), inner.update.offset.eq(u.offset),
                     inner.update.value.eq(u.value)]
        return m


@pytest.mark.parametrize("name, build", [
    ("mutant event output", lambda: event_output_harness(_OverwritingOutput())),
    ("mutant list append", lambda: book_lists_harness(lists=_UnlinkedAppend(BOOK_PARAMS))),
    ("mutant deferred NIL", lambda: book_lists_harness(lists=NoDeferredNil(BOOK_PARAMS))),
    ("mutant free stack", lambda: book_lists_harness(
        free=_StuckStack(BOOK_PARAMS.max_orders))),
    ("mutant best price", lambda: best_price_harness(cache=_NeverDirty(1, 4))),
])
def test_broken_component_is_caught(name, build):
    result = _check(name, build(), 20)
    assert result.status == "FAIL", f"{name} passed: the check does not catch it"
    assert (result.log.parent / "engine_0" / "trace.vcd").exists()


def test_broken_priority_encoder_is_caught(monkeypatch):
    real = occupancy_map.priority_encode
    monkeypatch.setattr(occupancy_map, "priority_encode",
                        lambda m, bits: _highest_set_with(real, m, bits))
    result = _check("mutant priority encoder", occupancy_harness(), 20)
    assert result.status == "FAIL"


def _highest_set_with(encoder, m, bits):
    """The wrong priority encoder: the highest set bit instead of the lowest."""
    found, index = encoder(m, bits[::-1])
    highest = Signal.like(index)
    m.d.comb += highest.eq(len(bits) - 1 - index)
    return found, highest
