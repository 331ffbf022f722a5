"""The virtual board's PHY, as its management interface shows it: an MDIO slave (IEEE 802.3
clause 22.2.4) with the clause 22 registers of a 1000BASE-T PHY (22.2.4, 28.2.4, 40.5).

It answers at `address`. `link` is the cable: while it is down, BMSR's link status bit
reads 0, and it stays 0 until BMSR has been read once the link is back (the bit latches low,
22.2.4.2.13), which is why the host reads BMSR twice. While the link is up, auto-negotiation
is complete and the link partner offers 1000BASE-T full duplex, so the host's resolution of
the negotiated speed (`Device.phys`) has something to find.

The PHY changes MDIO just after MDC rises and samples it as MDC rises, as a PHY does.
"""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PhyModel", "PHY_ID"]

PHY_ID = 0x5753_5401        # PHYID1 'WS', PHYID2: the virtual board's PHY, revision 1
BMCR_RESET = 0x1140         # auto-negotiation enabled, full duplex, 1000 Mb/s
BMSR_FIXED = 0x7909         # 100BASE-X and 10BASE-T abilities, extended status, AN ability
LINK_PARTNER = 0xC1E1       # ANLPAR: acknowledged, next page, 100/10 full and half duplex
GIGABIT_PARTNER = 0x3800    # 1000BASE-T status: local and remote receivers OK, LP 1000FD


class PhyModel(wiring.Component):
    mdc: In(1)
    mdio: In(1)                 # the line as everyone sees it (pulled up)
    o: Out(1)
    oe: Out(1)
    link: In(1)

    def __init__(self, address=1):
        self._address = address
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        link_latched = Signal()
        bmcr = Signal(16, init=BMCR_RESET)
        with m.If(~self.link):
            m.d.sync += link_latched.eq(0)

        def register(reg):
            values = {
                0: bmcr,
                1: BMSR_FIXED | Cat(0, 0, link_latched, 0, 0, self.link),
                2: PHY_ID >> 16, 3: PHY_ID & 0xFFFF,
                4: 0x01E1,                                  # ANAR: 100/10, full and half
                5: Mux(self.link, LINK_PARTNER, 0),
                9: 0x0200,                                  # advertise 1000BASE-T FD
                10: Mux(self.link, GIGABIT_PARTNER, 0),
                15: 0x2000,                                 # extended status: 1000BASE-T FD
            }
            out = Signal(16)
            with m.Switch(reg):
                for number, value in values.items():
                    with m.Case(number):
                        m.d.comb += out.eq(value)
            return out

        last_mdc = Signal()
        m.d.sync += last_mdc.eq(self.mdc)
        rising = self.mdc & ~last_mdc
        bit = self.mdio
        ones = Signal(range(33))
        count = Signal(range(19))
        header = Signal(12)         # op[1:0] phy[4:0] reg[4:0], first bit highest
        shift = Signal(18)
        reply = Signal(16)          # a read's data, sent from bit 15
        op, reg = header[10:12], header[0:5]
        with m.FSM():
            with m.State("HUNT"):
                with m.If(rising):
                    with m.If(bit):
                        m.d.sync += ones.eq(Mux(ones == 32, 32, ones + 1))
                    with m.Else():
                        m.d.sync += ones.eq(0)
                        with m.If(ones == 32):
                            m.next = "START"
            with m.State("START"):
                with m.If(rising):
                    m.d.sync += count.eq(0)
                    m.next = "HEADER"
                    with m.If(~bit):
                        m.next = "HUNT"
            with m.State("HEADER"):
                with m.If(rising):
                    next_header = Cat(bit, header[:11])
                    m.d.sync += [header.eq(next_header), count.eq(count + 1)]
                    with m.If(count == 11):
                        m.d.sync += count.eq(0)
                        with m.If(next_header[5:10] != self._address):
                            m.next = "HUNT"
                        with m.Elif(next_header[10:12] == 0b10):
                            m.d.sync += reply.eq(register(next_header[0:5]))
                            m.next = "READ"
                        with m.Else():
                            m.next = "WRITE"
            with m.State("READ"):
                with m.If(rising):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == 0):
                        # the turnaround's first bit has been sampled: drive its second, 0
                        m.d.sync += [self.oe.eq(1), self.o.eq(0)]
                        with m.If(reg == 1):
                            m.d.sync += link_latched.eq(self.link)
                    with m.Elif(count <= 16):
                        m.d.sync += [self.o.eq(reply[15]), reply.eq(reply << 1)]
                    with m.Else():
                        m.d.sync += [self.oe.eq(0), ones.eq(0)]
                        m.next = "HUNT"
            with m.State("WRITE"):
                with m.If(rising):
                    next_shift = Cat(bit, shift[:17])
                    m.d.sync += [shift.eq(next_shift), count.eq(count + 1)]
                    with m.If(count == 17):
                        with m.If((op == 0b01) & (reg == 0)):
                            m.d.sync += bmcr.eq(next_shift[:16] & 0x7FFF)  # reset self-clears
                        m.d.sync += ones.eq(0)
                        m.next = "HUNT"
        return m
