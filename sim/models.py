"""Devices under test for the virtual board, in gateware that only ever runs in simulation:
everything they do per cycle stays in the simulator, so the board runs at Verilator speed.

`EchoModel` echoes UDP/IPv4 frames (IEEE 802.3 clause 3 framing, RFC 791, RFC 768) with the
addresses and ports swapped, after a delay drawn from a table, and can drop, duplicate or
reorder them. It answers ARP requests (RFC 826) for any address with its own MAC
(`MODEL_MAC`), as a host that owns every address would, so `Device.resolve` works against
it; the requests take their draws and delays like any frame. The delay runs from the request's SFD entering the model to the reply's SFD
leaving it (RFC 1242 first-in first-out latency). Swapping addresses and ports leaves both
checksums valid (one's-complement sums do not depend on the order of their terms), so only
the FCS is recomputed, by a MAC of our own. The model cuts through: it starts a reply before
the request has fully arrived, so any delay of at least `MIN_DELAY_CYCLES` is exact.

It prints what it did, one line per event, so the truth is known to the host:
    @I n t_in action      frame n's SFD came in at cycle t_in; action: ACTIONS
    @O n t_in t_out       a reply to frame n left with its SFD at cycle t_out
    @S n                  frame n was not UDP/IPv4 and was not echoed
With `queue_frames` set, the model is also a bottleneck of known capacity (RFC 2544's DUT
with a finite forwarding rate): a store-and-forward FIFO of `queue_frames` frames drained by
a server that takes `frame_service + length × byte_service` cycles per frame (fixed point,
16 fractional bits; `length` counts the frame from its first byte to its FCS). A frame that
finds `queue_frames` frames in the queue (the one being served included) is dropped, as the
action `full`. Its service starts when it has fully arrived and the server is free; the
reply leaves when both its service has finished and its drawn delay (from its SFD) has
passed.

`Injector` sends the frames the simulator's loop puts into its FIFO (the Linux DUT's).
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.hdl import Format, Print
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import regmap
from ..hdl.mac.gmii import FrameByte, GmiiTx
from ..hdl.mac.tx import MacTx

__all__ = ["EchoModel", "Injector", "ACTIONS", "MIN_DELAY_CYCLES", "DELAY_TABLE"]

ACTIONS = ("pass", "drop", "duplicate", "hold", "full")
KIND_UDP, KIND_ARP = 1, 2   # what a stored frame is: echoed, answered (ARP request), or neither
MODEL_MAC = 0x02_00_00_00_00_09     # the model's own MAC, in its ARP replies
PASS, DROP, DUPLICATE, HOLD, FULL = range(len(ACTIONS))
MIN_DELAY_CYCLES = 64      # cut-through needs the request's bytes 0..24 before the reply starts
DELAY_TABLE = 1024         # delays are drawn from a table this long (a quantile function)
SLOT_BYTES = 2048
MAC_TX_LEAD = 9            # cycles from taking a reply off the queue to its SFD on the wire
HOLD_LIMIT = 125_000       # a frame held for reordering goes anyway after 1 ms alone
Entry = data.StructLayout({"n": 32, "t_in": 48, "depart": 48})     # a reply to send


def _swapped_index(i):
    """The request byte that goes out as reply byte `i`: MAC, IPv4 and UDP port pairs swap."""
    return Mux(i < 6, i + 6, Mux(i < 12, i - 6,
           Mux((i >= 26) & (i < 30), i + 4, Mux((i >= 30) & (i < 34), i - 4,
           Mux((i >= 34) & (i < 36), i + 2, Mux((i >= 36) & (i < 38), i - 2, i)))))).as_unsigned()


class EchoModel(wiring.Component):
    """Set the probability, seed and delay-table inputs before the first frame (`board_main.cpp`
    does, just after reset); probabilities are thresholds of a 32-bit draw, `p * 2**32`."""
    def __init__(self, slots=256):
        self._slots = slots
        super().__init__({
            "request": In(GmiiTx()), "reply": Out(GmiiTx()),
            "drop_below": In(33), "duplicate_below": In(33), "hold_below": In(33),
            "seed": In(32), "octave": In(32),
            "table_addr": In(range(DELAY_TABLE)), "table_data": In(32), "table_en": In(1),
            "queue_frames": In(range(slots)), "frame_service": In(48), "byte_service": In(48),
        })

    def elaborate(self, platform):
        m = Module()
        slots = self._slots
        now = Signal(48)
        m.d.sync += now.eq(now + 1)

        m.submodules.frames = frames = Memory(shape=8, depth=slots * SLOT_BYTES, init=[])
        m.submodules.lengths = lengths = Memory(shape=12, depth=slots, init=[])
        m.submodules.udp = udp = Memory(shape=2, depth=slots, init=[])     # KIND_*
        m.submodules.delays = delays = Memory(shape=32, depth=DELAY_TABLE, init=[])
        table = delays.write_port()
        m.d.comb += [table.addr.eq(self.table_addr), table.data.eq(self.table_data),
                     table.en.eq(self.table_en)]

        # Requests in: store each frame in slot n % slots, decide its fate at its SFD.
        m.submodules.queue = queue = SyncFIFOBuffered(width=Entry.size, depth=slots)
        frame_w, length_w, udp_w = frames.write_port(), lengths.write_port(), udp.write_port()
        arrivals = Signal(32)
        receiving = Signal()
        index = Signal(12)
        slot_in = arrivals[:slots.bit_length() - 1]
        ethertype_ok, version_ok = Signal(), Signal()
        is_arp, arp_op = Signal(), Signal()
        draw = Signal(32)
        delay_draw = Signal(32)
        # The draws follow the seed input until the first frame: the inputs are registered
        # after reset, so the seed is not there yet on reset's first cycle.
        seeded = Signal()
        with m.If(~seeded):
            m.d.sync += [draw.eq(self.seed | 1), delay_draw.eq(self.seed ^ 0x9E3779B9 | 1)]

        # The delay: table[index] + octaves × `octave`. With `octave` 0 the index is 10 random
        # bits (any table). With an exponential table, `octave` = mean·ln 2: the draw U is
        # 2^-(k+1)·(1 + f) with k its leading zeros, so −ln U = k·ln 2 + (ln 2 − ln(1 + f));
        # the table holds the second term over f's top 10 bits, k supplies the tail.
        index_bits = DELAY_TABLE.bit_length() - 1
        octaves = Signal(range(33))
        for k in range(32):             # leading zeros, priority from the top bit
            with m.If(delay_draw[31 - k:] == 1):
                m.d.comb += octaves.eq(k)
        normalised = Signal(64)
        m.d.comb += normalised.eq(delay_draw << (octaves + 1))    # f in bits 32..
        delay_read = delays.read_port(domain="comb")
        m.d.comb += delay_read.addr.eq(Mux(self.octave != 0, normalised[32 - index_bits:32],
                                           delay_draw[:index_bits]))
        delay = Signal(48)
        m.d.comb += delay.eq(delay_read.data + octaves * self.octave)

        # The capacity queue: when each frame in it finishes its service (Q48.16, in order),
        # the last one's finish, and the frame now arriving (accepted at its SFD, queued at
        # its end, when its length and so its service time are known).
        capacity = self.queue_frames != 0
        m.submodules.finishes = finishes = SyncFIFOBuffered(width=64, depth=slots)
        now_q = Cat(Const(0, 16), now)
        busy_until = Signal(64)
        arriving, arriving_entry = Signal(), Signal(Entry)
        m.d.comb += finishes.r_en.eq(finishes.r_rdy & (finishes.r_data <= now_q))

        held, held_t_in, held_depart, holding = Signal(32), Signal(48), Signal(48), Signal()
        second, second_entry = Signal(), Signal(Entry)

        def entry(n, t_in, depart):
            return Cat(n, t_in, depart)     # in Entry's field order

        m.d.comb += [frame_w.addr.eq(Cat(index[:11], slot_in)), frame_w.data.eq(self.request.txd),
                     length_w.addr.eq(slot_in), udp_w.addr.eq(slot_in)]
        sfd_in = ~receiving & self.request.tx_en & (self.request.txd == regmap.SFD)
        with m.If(sfd_in):
            depart = now + delay
            action = Signal(3)
            with m.If(holding):
                m.d.comb += action.eq(PASS)     # the frame after a held one passes it
            with m.Elif((queue.level >= slots - 4)
                        | (capacity & (finishes.level >= self.queue_frames))):
                m.d.comb += action.eq(FULL)
            with m.Elif(draw < self.drop_below):
                m.d.comb += action.eq(DROP)
            with m.Elif(draw < self.duplicate_below):
                m.d.comb += action.eq(DUPLICATE)
            with m.Elif(draw < self.hold_below):
                m.d.comb += action.eq(HOLD)
            with m.Else():
                m.d.comb += action.eq(PASS)
            m.d.sync += [receiving.eq(1), index.eq(0), draw.eq(_xorshift(draw)), seeded.eq(1),
                         delay_draw.eq(_xorshift(delay_draw)),
                         Print(Format("@I {} {} {}", arrivals, now, action))]
            m.d.comb += [length_w.data.eq(0), length_w.en.eq(1), udp_w.data.eq(0), udp_w.en.eq(1)]
            with m.If(capacity & (action == PASS)):
                m.d.sync += [arriving.eq(1), arriving_entry.eq(entry(arrivals, now, depart))]
            with m.Elif((action == PASS) | (action == DUPLICATE)):
                m.d.comb += [queue.w_data.eq(entry(arrivals, now, depart)), queue.w_en.eq(1)]
            with m.If(action == DUPLICATE):
                m.d.sync += [second.eq(1), second_entry.eq(entry(arrivals, now, depart))]
            with m.If(holding):
                m.d.sync += [second.eq(1), second_entry.eq(entry(held, held_t_in, depart)),
                             holding.eq(0)]
            with m.If(action == HOLD):
                m.d.sync += [holding.eq(1), held.eq(arrivals), held_t_in.eq(now),
                             held_depart.eq(depart)]
        with m.Elif(second):
            m.d.comb += [queue.w_data.eq(second_entry), queue.w_en.eq(1)]
            m.d.sync += second.eq(0)
        with m.Elif(holding & (now - held_t_in > HOLD_LIMIT)):
            m.d.comb += [queue.w_data.eq(entry(held, held_t_in, held_depart)), queue.w_en.eq(1)]
            m.d.sync += holding.eq(0)

        with m.If(receiving):
            with m.If(self.request.tx_en):
                m.d.comb += frame_w.en.eq(index < SLOT_BYTES)
                m.d.sync += index.eq(index + 1)
                with m.Switch(index):
                    with m.Case(12):
                        m.d.sync += [ethertype_ok.eq(self.request.txd == 0x08),
                                     is_arp.eq(self.request.txd == 0x08)]
                    with m.Case(13):
                        m.d.sync += [ethertype_ok.eq(ethertype_ok & (self.request.txd == 0x00)),
                                     is_arp.eq(is_arp & (self.request.txd == 0x06))]
                    with m.Case(14):
                        m.d.sync += version_ok.eq(self.request.txd == 0x45)   # IPv4, no options
                    with m.Case(20):
                        m.d.sync += arp_op.eq(self.request.txd == 0x00)
                    with m.Case(21):
                        m.d.sync += arp_op.eq(arp_op & (self.request.txd == 0x01))  # a request
                    with m.Case(23):
                        udp_frame = ethertype_ok & version_ok & (self.request.txd == 17)
                        m.d.comb += [udp_w.data.eq(Mux(udp_frame, KIND_UDP,
                                                       Mux(is_arp & arp_op, KIND_ARP, 0))),
                                     udp_w.en.eq(1)]
            with m.Else():
                m.d.comb += [length_w.data.eq(index), length_w.en.eq(1)]
                m.d.sync += [receiving.eq(0), arrivals.eq(arrivals + 1)]
                with m.If(arriving):
                    start = Mux(busy_until > now_q, busy_until, now_q)
                    finish = Signal(64)
                    m.d.comb += finish.eq(start + self.frame_service + index * self.byte_service)
                    waiting = data.View(Entry, arriving_entry)
                    ready = (finish + 0xFFFF)[16:]          # the first cycle it has finished
                    m.d.comb += [finishes.w_data.eq(finish), finishes.w_en.eq(1),
                                 queue.w_data.eq(entry(waiting.n, waiting.t_in,
                                                       Mux(ready > waiting.depart, ready,
                                                           waiting.depart))),
                                 queue.w_en.eq(1)]
                    m.d.sync += [busy_until.eq(finish), arriving.eq(0)]

        # Replies out, each when its departure time comes (or as soon as the wire is free).
        m.submodules.mac = mac = MacTx()
        head = data.View(Entry, queue.r_data)
        n_out, t_in_out, i_out = Signal(32), Signal(48), Signal(12)
        slot_out = n_out[:slots.bit_length() - 1]
        frame_r = frames.read_port(domain="comb")
        length_r = lengths.read_port(domain="comb")
        udp_r = udp.read_port(domain="comb")
        arp_out = udp_r.data == KIND_ARP
        m.d.comb += [frame_r.addr.eq(Cat(Mux(arp_out, _arp_index(i_out),
                                             _swapped_index(i_out))[:11], slot_out)),
                     length_r.addr.eq(Mux(queue.r_rdy & ~mac.frames.valid, head.n, n_out)[
                         :slots.bit_length() - 1]),
                     udp_r.addr.eq(length_r.addr)]
        with m.FSM():
            with m.State("WAIT"):
                with m.If(queue.r_rdy & (now + MAC_TX_LEAD >= head.depart)):
                    m.d.comb += queue.r_en.eq(1)
                    m.d.sync += [n_out.eq(head.n), t_in_out.eq(head.t_in), i_out.eq(0)]
                    with m.If(udp_r.data):
                        m.next = "SEND"
                    with m.Else():
                        m.d.sync += Print(Format("@S {}", head.n))
            with m.State("SEND"):
                last = (length_r.data != 0) & (i_out + 5 == length_r.data)
                constant, value = _arp_constant(i_out)
                m.d.comb += [mac.frames.valid.eq(1),
                             mac.frames.p.data.eq(Mux(arp_out & constant, value, frame_r.data)),
                             mac.frames.p.last.eq(last)]
                with m.If(mac.frames.ready):
                    m.d.sync += i_out.eq(i_out + 1)
                    with m.If(last):
                        m.next = "WAIT"
        with m.If(mac.sfd):
            m.d.sync += Print(Format("@O {} {} {}", n_out, t_in_out, now))
        wiring.connect(m, mac.gmii, wiring.flipped(self.reply))
        return m


def _arp_index(i):
    """The request byte that goes out as byte `i` of an ARP reply (RFC 826): the sender's MAC
    and IP become the target's, the target IP the sender's; `_arp_constant` gives the rest."""
    return Mux(i < 6, i + 6, Mux((i >= 28) & (i < 32), i + 10,
           Mux((i >= 32) & (i < 38), i - 10, Mux((i >= 38) & (i < 42), i - 10, i)))).as_unsigned()


def _arp_constant(i):
    """(is a constant, its value) for ARP reply byte `i`: the model's MAC as Ethernet source
    and ARP sender, and the opcode 2 (reply)."""
    mac = MODEL_MAC.to_bytes(6, "big")
    positions = ([(6 + k, byte) for k, byte in enumerate(mac)]
                 + [(22 + k, byte) for k, byte in enumerate(mac)] + [(20, 0x00), (21, 0x02)])
    constant, value = Const(0, 1), Const(0, 8)
    for position, byte in positions:
        constant = Mux(i == position, 1, constant)
        value = Mux(i == position, byte, value)
    return constant, value


def _xorshift(state):
    """Marsaglia's xorshift32, one step."""
    state = state ^ (state << 13)[:32]
    state = state ^ (state >> 17)
    return state ^ (state << 5)[:32]


class Injector(wiring.Component):
    """Frames (without FCS) pushed byte by byte into `frames` go out on `gmii` once whole, so a
    slow writer never stalls the MAC inside a frame."""
    frames: In(stream.Signature(FrameByte))
    gmii: Out(GmiiTx())

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=9, depth=4096)
        m.submodules.mac = mac = MacTx()
        whole = Signal(range(4096))          # complete frames in the FIFO
        sending = Signal()
        pushed_last = self.frames.valid & self.frames.ready & self.frames.p.last
        popped_last = mac.frames.valid & mac.frames.ready & mac.frames.p.last
        m.d.sync += whole.eq(whole + pushed_last - popped_last)
        m.d.comb += [fifo.w_data.eq(self.frames.payload), fifo.w_en.eq(self.frames.valid),
                     self.frames.ready.eq(fifo.w_rdy),
                     mac.frames.payload.eq(fifo.r_data),
                     mac.frames.valid.eq(fifo.r_rdy & (sending | (whole != 0))),
                     fifo.r_en.eq(mac.frames.ready & mac.frames.valid)]
        with m.If(mac.frames.valid & mac.frames.ready):
            m.d.sync += sending.eq(~mac.frames.p.last)
        wiring.connect(m, mac.gmii, wiring.flipped(self.gmii))
        return m
