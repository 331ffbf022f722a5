"""The crossing between the control side (`ctl`, half the core clock) and the core (`sync`).

The host's settings and commands go to the core, and the core's counters come back, in one
round trip of two toggles, each through a two-flop synchronizer:

    ctl:  latch the settings and the pending commands, toggle `req` ──►
    sync: apply them (each command fires for one cycle); three cycles later capture the
          counters into `snapshot`, toggle `ack` ──►
    ctl:  the round is done: `snapshot` holds still until the next round starts

Each side holds what it latched until the other has taken it, so no value is sampled while it
changes, and all counters of a snapshot belong to the same cycle. A round takes about eight
control cycles. It runs when asked (`refresh`: before the bank reads, after it is written), or
when a command is pending, but never while `hold` (the bank is reading the snapshot).

While `freeze` is high when a round begins (the host holds a snapshot: SNAPSHOT), the round
captures only the counters named `always` (those the core holds still itself), unless it
carries one of the `capturing` commands: the snapshot then stays that instant's.
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..fanout import copies, load_in_shares

__all__ = ["ControlCrossing"]

CAPTURE_DELAY = 3       # sync cycles from applying a round's commands to the snapshot


class ControlCrossing(wiring.Component):
    """`settings` and `commands` (pulses) are in `ctl`, `applied` and `fired` in `sync`;
    `live` is sampled in `sync` into `snapshot`, which `ctl` reads once `settled`."""

    def __init__(self, settings, commands, counters, always=(), capturing=()):
        self._settings = data.StructLayout(settings)
        self._commands = data.StructLayout({name: 1 for name in commands})
        self._counters = data.StructLayout(counters)
        self._always, self._capturing = set(always), set(capturing)
        assert self._always <= set(counters) and self._capturing <= set(commands)
        super().__init__({
            "settings": In(self._settings), "applied": Out(self._settings),
            "commands": In(self._commands), "fired": Out(self._commands),
            "in_flight": Out(self._commands),    # given and not yet applied (or applying)
            "live": In(self._counters), "snapshot": Out(self._counters),
            "refresh": In(1), "hold": In(1), "freeze": In(1),
            "settled": Out(1),      # no round asked for or running: `snapshot` is fresh
        })

    def elaborate(self, platform):
        m = Module()
        req, ack = Signal(), Signal()
        req_seen, ack_seen = Signal(), Signal()
        req_sync, ack_sync = Signal(), Signal()
        m.submodules.req_sync = FFSynchronizer(req, req_sync, o_domain="sync")
        m.submodules.ack_sync = FFSynchronizer(ack, ack_sync, o_domain="ctl")

        # Control side.
        latched = Signal(self._settings)
        pending, carried = Signal(self._commands), Signal(self._commands)
        requested = Signal(init=1)     # the first round, right after reset, brings the
        waiting = Signal()             # settings' reset values over
        commands = self.commands.as_value()
        m.d.comb += [self.in_flight.eq(pending.as_value() | carried.as_value() | commands),
                     self.settled.eq(~requested & ~waiting)]
        m.d.ctl += [pending.eq(pending.as_value() | commands),
                    requested.eq(requested | self.refresh)]
        fresh = Signal()            # this round captures every counter
        forced = Cat(getattr(pending, name) for name in sorted(self._capturing)).any()
        with m.If(~waiting):
            with m.If((requested | (pending.as_value() != 0)) & ~self.hold):
                m.d.ctl += [latched.eq(self.settings), carried.eq(pending), pending.eq(commands),
                            requested.eq(self.refresh), req.eq(~req), waiting.eq(1),
                            fresh.eq(~self.freeze | forced)]
        with m.Elif(ack_sync != ack_seen):
            m.d.ctl += [ack_seen.eq(ack_sync), carried.eq(0), waiting.eq(0)]

        # Core side. The capture's enable reaches about a thousand flip-flops: in copies.
        after = Signal(CAPTURE_DELAY)
        arrived = req_sync != req_seen
        m.d.sync += [self.fired.eq(0), after.eq(Cat(arrived, after[:-1]))]
        with m.If(arrived):
            m.d.sync += [req_seen.eq(req_sync), self.applied.eq(latched),
                         self.fired.eq(carried)]
        fresh_sync = Signal()
        with m.If(arrived):
            m.d.sync += fresh_sync.eq(fresh)
        live, snapshot = self.live.as_value(), self.snapshot.as_value()
        held, kept = [], []         # bit ranges captured unless frozen, and always
        for name, field in self._counters:
            bits = slice(field.offset, field.offset + field.width)
            (kept if name in self._always else held).append(bits)
        capture = copies(1, 8, "capture")
        m.d.sync += [copy.eq(after[-2] & fresh_sync) for copy in capture]
        load_in_shares(m, Cat(snapshot[b] for b in held), [(capture, Cat(live[b] for b in held))])
        if kept:
            always = Signal()
            m.d.sync += always.eq(after[-2])
            with m.If(always):
                m.d.sync += [snapshot[b].eq(live[b]) for b in kept]
        with m.If(after[-1]):
            m.d.sync += ack.eq(~ack)
        return m
