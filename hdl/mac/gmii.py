"""GMII signals (IEEE 802.3 clause 35.2): 8 data bits per cycle of a 125 MHz clock."""
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from ...regmap import MAX_FRAME

__all__ = ["GmiiTx", "GmiiRx", "FrameByte", "RxFrame"]


class GmiiTx(wiring.Signature):
    """Transmit side, as driven by the MAC."""
    def __init__(self):
        super().__init__({"txd": Out(8), "tx_en": Out(1), "tx_er": Out(1)})


class GmiiRx(wiring.Signature):
    """Receive side, as driven by the PHY."""
    def __init__(self):
        super().__init__({"rxd": Out(8), "rx_dv": Out(1), "rx_er": Out(1)})


# One byte of a frame between the layers above the MAC and the MAC, `last` on the final byte
# (FCS excluded: the MAC adds it on transmit).
FrameByte = data.StructLayout({"data": 8, "last": 1})


class RxFrame(wiring.Signature):
    """A received frame as the MAC hands it to the parser and the responder (`connect`ed to
    both): `start` as it begins, its SFD time in `stamp` (a cycle after `start`, until the next
    frame's), each byte after the SFD with its `index` (FCS included), then `done` with its
    `length` (bytes, FCS included, saturating) and whether it is `good` (it passed every
    check)."""
    def __init__(self):
        super().__init__({"start": Out(1), "stamp": Out(64), "byte_valid": Out(1),
                          "byte": Out(8), "index": Out(range(MAX_FRAME + 2)), "done": Out(1),
                          "good": Out(1), "length": Out(range(MAX_FRAME + 2))})
