"""GMII signals (IEEE 802.3 clause 35.2): 8 data bits per cycle of a 125 MHz clock."""
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

__all__ = ["GmiiTx", "GmiiRx", "FrameByte"]


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
