"""The free-slot stack of the matching engine: a LIFO of order slots in block RAM."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["FreeSlotStack", "free_slot_signature"]


def free_slot_signature(depth):
    """The stack from its user's side: ``top``, ``ready``, ``empty`` in; ``pop``, ``push``,
    ``push_slot`` out (see :class:`FreeSlotStack`)."""
    return wiring.Signature({
        "top": In(range(depth)), "ready": In(1), "empty": In(1),
        "pop": Out(1), "push": Out(1), "push_slot": Out(range(depth)),
    })


class FreeSlotStack(wiring.Component):
    """A LIFO of free order slots, the reference model's ``free`` list in block RAM.

    Initially it holds every slot with slot 0 on top (the RAM holds ``depth-1, …, 1, 0`` from
    the bottom), so the first pops hand out ``0, 1, 2, …``; a pushed slot is the next popped.
    The top of the stack is read through a registered read port whose address follows the
    stack pointer: ``top`` is valid when ``ready`` is high, one cycle after the last push or pop.

    Parameters
    ----------
    depth : int
        Number of slots.

    Members
    -------
    top : Out(range(depth))
        The slot a pop would return (valid while ``ready``).
    ready : Out(1)
        ``top`` reflects the current stack pointer.
    empty : Out(1)
        No free slot.
    pop : In(1)
        Take the top slot (only while ``ready`` and not ``empty``).
    push : In(1)
        Push ``push_slot``. Push and pop are never asserted in the same cycle.
    push_slot : In(range(depth))
    """

    def __init__(self, depth):
        self._depth = depth
        super().__init__(free_slot_signature(depth).flip())

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.mem = mem = Memory(shape=range(depth), depth=depth,
                                        init=[depth - 1 - i for i in range(depth)])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,))

        count = Signal(range(depth + 1), init=depth)
        moved = Signal(init=1)
        m.d.comb += [
            rd.addr.eq(count - 1),
            self.top.eq(rd.data),
            self.empty.eq(count == 0),
            self.ready.eq(~moved),
            wr.addr.eq(count),
            wr.data.eq(self.push_slot),
            wr.en.eq(self.push),
        ]
        m.d.sync += moved.eq(self.push | self.pop)
        with m.If(self.push):
            m.d.sync += count.eq(count + 1)
        with m.Elif(self.pop):
            m.d.sync += count.eq(count - 1)
        return m
