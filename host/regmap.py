"""The contract between gateware and host: constants, the register map and the table layouts.

Plain Python on purpose (no amaranth import): `wirestamp.hdl` builds its register bank and its
table layouts from this module, and the host packs and validates configuration with it. Change it
here and both sides follow; `docs/registers.md` is generated from it (`wirestamp regs`).
"""
from dataclasses import dataclass

VERSION = 0x0002_0000                   # gateware/contract version: major.minor, 16 bits each
ID = int.from_bytes(b"WSTP", "big")     # value of the ID register, and the payload magic

# 1000BASE-T moves one byte per 8 ns on GMII: the Ethernet clock counts byte times.
CLOCK_HZ = 125_000_000
NS_PER_CYCLE = 8
PREAMBLE_BYTES = 8                      # 7 x PREAMBLE + SFD (IEEE 802.3 clause 35.2.3.2)
PREAMBLE = 0x55                         # a preamble byte on GMII
SFD = 0xD5                              # the start frame delimiter
IFG_BYTES = 12                          # minimum inter-frame gap
FRAME_OVERHEAD = PREAMBLE_BYTES + IFG_BYTES
MIN_FRAME = 64                          # frame sizes include the 4-byte FCS
MAX_FRAME = 1518
FCS_BYTES = 4

MAX_STREAMS = 16                        # stream table rows in the register map; an image
                                        # carries BUILD_STREAMS of them (CAPS.streams)
BUILD_STREAMS = (4, 8, 16)              # the stream counts a build can take (`Core(streams=)`)
SEGMENTS = 64                           # rate-profile segment table rows
SIZES = 8                               # frame sizes a stream can cycle through (IMIX)
SIZE_BITS = 11

TIME_FRAC_BITS = 24                     # timebase increment: ns in 8.24 fixed point
# The timebase's reference outputs for a lab counter (`hdl.time.Reference`, `wirestamp
# calibrate`): a pulse on each second of the trimmed timebase, and a square wave that is bit
# REF_SQUARE_BIT of it: 2**(bit + 1) trimmed ns a period, 15.625 MHz. 10 MHz is not a whole
# number of 8 ns steps (12.5 cycles); 15.625 MHz is, and is the fastest bit under 20 MHz.
REF_PPS_NS = 10**9
REF_PPS_WIDTH_CYCLES = 12_500_000       # the pulse lasts 100 ms (in clock cycles)
REF_SQUARE_BIT = 5
REF_SQUARE_HZ = 10**9 / 2 ** (REF_SQUARE_BIT + 1)
RATE_FRAC_BITS = 24                     # fractional bits of a segment's slope
TICK_CYCLES = 16                        # rate profiles advance one tick per stream every 16 cycles
PHASE_BITS = 40                         # rate accumulators: rate/modulus packets per byte time
COUNT_BITS = 48                         # packet counters: 6 years at 1.49 Mpps

# Receive side.
SEQ_WINDOW = 256                        # sequence numbers behind the newest that tell a
                                        # reordered packet from a duplicate
HIST_LINEAR = 32                        # histogram: buckets 0..31 are 8 ns wide (0-255 ns),
HIST_SUB = 16                           # then 16 per octave (width at most 1/16 of the value),
HIST_BUCKETS = 512                      # up to bucket 510 (2**35 * 8 ns, 275 s); the last
HIST_OVERFLOW = HIST_BUCKETS - 1        # bucket counts everything longer
HIST_COUNT_BITS = 36
HIST_COUNT_CYCLES = 20                  # the tracker's bucket count is valid this many
                                        # control-clock cycles after it is asked for
HIST_BURST = 32                         # buckets read in one READ of HIST_COUNTS (64 words)
HIST_SELECT_FIELDS = [("bucket", 9), ("stream", 23)]    # the first bucket HIST_COUNTS reads
START_CLEAR_CYCLES = MAX_STREAMS * HIST_BUCKETS  # START clears the histograms (control-clock
                                                  # cycles, at most 131 us), then starts streams
RX_COUNTER_BITS = 48                    # 6 years of frames at 1.49 Mpps

# A measured datagram as the receive path keeps it: both stamps whole.
PACKET_FIELDS = [("stream", 8), ("flags", 8), ("length", 16), ("seq", 32),
                 ("tx_ns", 64), ("rx_ns", 64)]
# ... and as a record on the links: 16 bytes, so a 64-byte stream at line rate needs 23.8 MB/s
# (under half of USB 2.0's 53.2 MB/s bulk ceiling). `rx_ns` is the RX stamp's low 32 bits; its
# high 32 bits are those of the latest epoch mark before it: a record with RECORD_EPOCH in
# `flags` whose `seq` holds them (its other fields repeat the record after it, and mean
# nothing), put in whenever they change (every 4.3 s) and before a run's first record. `latency_ns` is rx − tx, the TX stamp's whole information; outside
# 0..2**32 − 1 (over 4.3 s, or a foreign sender's stamp from the future) it reads 2**32 − 1
# with RECORD_CLIPPED set, and the record's TX stamp is unknown.
RECORD_FIELDS = [("stream", 8), ("flags", 8), ("length", 16), ("seq", 32),
                 ("rx_ns", 32), ("latency_ns", 32)]
RECORD_PACKET_FLAGS = 0x01              # the datagram's own flags a record keeps (its stream's last)
RECORD_CLIPPED = 0x40
RECORD_EPOCH = 0x80

def join_words(words):
    """The value of 32-bit words, low first (a wide register's, a packed row's)."""
    return sum(w << (32 * i) for i, w in enumerate(words))


def unpack_words(fields, words, signed=()):
    """Split 32-bit words (low first) into `fields` [(name, width)], packed from bit 0."""
    value = join_words(words)
    out, shift = {}, 0
    for name, width in fields:
        v = (value >> shift) & ((1 << width) - 1)
        if name in signed and v >> (width - 1):
            v -= 1 << width
        out[name] = v
        shift += width
    return out


def pack_fields(fields, values, what="fields"):
    """`values` {name: int} packed into `fields` [(name, width)] from bit 0 (missing ones are
    0); each must fit its field."""
    unknown = set(values) - {n for n, _ in fields}
    if unknown:
        raise KeyError(f"{what} has no field {sorted(unknown)}")
    packed, shift = 0, 0
    for name, width in fields:
        value = values.get(name, 0)
        if not 0 <= value < (1 << width):
            raise ValueError(f"{what}.{name} = {value} does not fit in {width} bits")
        packed |= value << shift
        shift += width
    return packed


def hist_bucket(latency_ns):
    """The histogram bucket of a latency: 8 ns wide below 256 ns, then 16 per octave."""
    v = max(latency_ns, 0) >> 3
    if v < HIST_LINEAR:
        return v
    octave = v.bit_length() - 1
    bucket = HIST_LINEAR + (octave - 5) * HIST_SUB + ((v >> (octave - 4)) & (HIST_SUB - 1))
    return min(bucket, HIST_OVERFLOW)


def hist_lower_ns(bucket):
    """The smallest latency (ns) that falls in `bucket`."""
    if bucket < HIST_LINEAR:
        return bucket * 8
    octave, sub = divmod(bucket - HIST_LINEAR, HIST_SUB)
    return ((HIST_SUB + sub) << (octave + 1)) * 8


# Per-stream receive statistics, LSB first. Latencies are ns; sums are wide enough for a day
# of 1 s latencies at line rate (see docs/receive.md).
STATS_FIELDS = [
    ("rx_packets", 48), ("rx_bytes", 64), ("latency_min", 40), ("latency_max", 40),
    ("latency_sum", 88), ("latency_sumsq", 128), ("lost", 48), ("reordered", 48),
    ("duplicates", 48), ("next_seq", 32),
]
STATS_SIGNED = {"lost"}                 # goes down when a late packet turns up
# Jitter per stream, of every packet in arrival order (hdl/rx/jitter.py): D is the change in
# latency from the stream's previous packet (ns). `jitter_q4` is RFC 3550's interarrival
# jitter J += (|D| - J)/16 in 1/16 ns, and the IPDV of RFC 3393 is kept as its minimum,
# maximum, the sum of |D| and the number of differences.
JITTER_FIELDS = [("jitter_q4", 48), ("ipdv_min", 48), ("ipdv_max", 48), ("ipdv_abs_sum", 64),
                 ("ipdv_pairs", 48)]
JITTER_SIGNED = {"ipdv_min", "ipdv_max"}
JITTER_FRAC_BITS = 4
# CAPS: what this image carries. `streams` and `jitter` are build options (`Core`).
CAPS_FIELDS = [("streams", 8), ("segments", 8), ("sizes", 8), ("jitter", 1)]


def caps(streams=MAX_STREAMS, jitter=True):
    """The CAPS value of an image with `streams` streams, with or without the jitter unit."""
    assert streams in BUILD_STREAMS, f"streams: {streams}, a build takes {BUILD_STREAMS}"
    return pack_fields(CAPS_FIELDS, {"streams": streams, "segments": SEGMENTS, "sizes": SIZES,
                                     "jitter": int(jitter)}, "CAPS")

# The wirestamp signature, first bytes of every generated UDP payload (big-endian, 18 bytes:
# exactly the payload room of a 64-byte frame).
# Bit fields of single registers, decoded by name (`unpack_words`, `field_bits`).
VERSION_FIELDS = [("minor", 16), ("major", 16)]
STATUS_FIELDS = [("running", 1)]
SNAPSHOT_FIELDS = [("hold", 1)]
ARP_RESULT_FIELDS = [("mac", 48), ("answered", 1)]


def field_bits(fields, name):
    """The bit slice of field `name` in `fields` [(name, width)], packed from bit 0."""
    shift = 0
    for field, width in fields:
        if field == name:
            return slice(shift, shift + width)
        shift += width
    raise KeyError(name)


# PHY management (IEEE 802.3 clause 22): MDIO_COMMAND starts one MDIO frame, MDIO_RESULT
# holds the last read's data and whether a frame is under way.
MDIO_COMMAND_FIELDS = [("data", 16), ("reg", 5), ("phy", 5), ("write", 1)]
MDIO_RESULT_FIELDS = [("data", 16), ("busy", 1)]
MDIO_CYCLES = 64 * 32                   # one frame: 64 MDC periods of 32 control-clock cycles

SIGNATURE_FIELDS = [("magic", 32), ("stream", 8), ("flags", 8), ("seq", 32), ("tx_ns", 64)]
SIGNATURE_BYTES = sum(w for _, w in SIGNATURE_FIELDS) // 8


def pack_signature(stream, seq, tx_ns=0, flags=0):
    """The first SIGNATURE_BYTES of a wirestamp payload (SIGNATURE_FIELDS, big-endian)."""
    values = {"magic": ID, "stream": stream, "flags": flags, "seq": seq, "tx_ns": tx_ns}
    return b"".join(values[name].to_bytes(width // 8, "big") for name, width in SIGNATURE_FIELDS)


def unpack_signature(payload):
    """{field: value} of a UDP payload that starts with the signature, else None."""
    if len(payload) < SIGNATURE_BYTES or payload[:4] != ID.to_bytes(4, "big"):
        return None
    fields, at = {}, 0
    for name, width in SIGNATURE_FIELDS:
        fields[name] = int.from_bytes(payload[at:at + width // 8], "big")
        at += width // 8
    return fields
HEADER_BYTES = 14 + 20 + 8              # Ethernet + IPv4 (no options) + UDP


@dataclass(frozen=True)
class Register:
    name: str
    addr: int            # word address on the register bus
    width: int           # a multiple of 32; wider registers take several words, low first
    access: str          # "r", "rw", or "w" (write strobes: writing acts, reading returns 0)
    # Reading word 0 of a wide "r" register latches the other words, so they all belong to
    # the same instant; read the words in order from word 0.
    reset: int
    doc: str
    count: int = 1       # >1: an array, element i at addr + i * words
    pops: bool = False   # reading word 0 also strobes the core (a FIFO pop)

    @property
    def words(self):
        return self.width // 32


@dataclass(frozen=True)
class Table:
    """A write-only memory of rows; each row is `fields` packed LSB first into 32-bit words."""
    name: str
    base: int
    rows: int
    stride: int          # words between rows (a power of two)
    fields: list         # [(name, width)], packed in order from bit 0
    doc: str

    @property
    def row_bits(self):
        return sum(w for _, w in self.fields)

    @property
    def row_words(self):
        return -(-self.row_bits // 32)

    def pack(self, **values):
        """Row words for `values` (missing fields are 0); each value must fit its field."""
        row = pack_fields(self.fields, values, self.name)
        return [(row >> (32 * i)) & 0xFFFF_FFFF for i in range(self.row_words)]

    def unpack(self, words):
        return unpack_words(self.fields, words)

    def addr(self, row, word=0):
        return self.base + row * self.stride + word


CONTROL_START = 1 << 0    # arm every enabled stream and start them on the same cycle
CONTROL_STOP = 1 << 1     # stop all streams (frames in flight complete)
CONTROL_CLEAR = 1 << 2    # zero TX_FRAMES, TX_BYTES and SCHED_LATE

REGISTERS = [
    Register("ID", 0x000, 32, "r", ID, "Identifies a wirestamp core: ASCII 'WSTP'."),
    Register("VERSION", 0x001, 32, "r", VERSION, "Contract version (VERSION_FIELDS)."),
    Register("CAPS", 0x002, 32, "r", caps(),
             "What the image carries (CAPS_FIELDS): its streams, profile segments, sizes per "
             "stream, and whether it computes jitter (JITTER reads 0 without it). Stream table "
             "rows from `streams` on are not written, signature datagrams of such a stream are "
             "RX_FOREIGN_UDP, and what STREAM_TX, STATS, JITTER and HIST_COUNTS read for one "
             "means nothing (the host never asks)."),
    Register("CLOCK_HZ", 0x003, 32, "r", CLOCK_HZ, "Ethernet clock: byte times per second."),
    Register("CONTROL", 0x004, 32, "w", 0,
             "Bit 0 START: arm enabled streams, start them together, clear the receive "
             "statistics and histograms. Bit 1 STOP. Bit 2 CLEAR: zero the TX and RX counters "
             "(STREAM_TX, the sequence numbers, restart at each START)."),
    Register("STATUS", 0x005, 32, "r", 0,
             "STATUS_FIELDS: whether the generator runs (some stream active)."),
    Register("ACTIVE", 0x006, 32, "r", 0, "Bit n: stream n is active."),
    Register("SNAPSHOT", 0x007, 32, "w", 0,
             "SNAPSHOT_FIELDS. Writing `hold` 1 takes a snapshot of every counter and "
             "statistic at one instant (within a microsecond: TIME, the unit-wide counters, "
             "ACTIVE, and STREAM_TX and STATS of every stream), and reads show it until "
             "SNAPSHOT is written again; `hold` 0 lets reads show the live values again. "
             "RECORD_LEVEL, RECORD_OVERFLOW, JITTER, HIST_COUNTS and RECORD are not held."),
    Register("TIME_INCREMENT", 0x008, 32, "rw", NS_PER_CYCLE << TIME_FRAC_BITS,
             "Timebase step per cycle, ns in 8.24 fixed point: 8 ns nominal; "
             "trim it to correct the oscillator's ppm error."),
    Register("TIME", 0x00A, 64, "r", 0, "Timebase now, ns. Reading the low word latches the high word."),
    Register("TX_FRAMES", 0x00C, 64, "r", 0, "Frames sent by the MAC (generated and replies)."),
    Register("TX_BYTES", 0x00E, 64, "r", 0, "Bytes of the frames sent by the MAC, FCS included, preamble not."),
    Register("SCHED_LATE", 0x010, 32, "r", 0,
             "Packets never sent: their credit found the stream's backlog (255) full, "
             "because the streams asked for more than the line carries."),
    Register("STREAM_TX", 0x100, 64, "r", 0,
             "Per stream: packets sent (the next sequence number is its low 32 bits).",
             count=MAX_STREAMS),
    # Receive path: every frame lands in exactly one of these.
    Register("RX_FRAMES", 0x200, 64, "r", 0, "Good frames received (any kind)."),
    Register("RX_BYTES", 0x202, 64, "r", 0, "Bytes of good frames, FCS included."),
    Register("RX_FCS_ERRORS", 0x204, 64, "r", 0, "Frames dropped: bad FCS."),
    Register("RX_ERRORS", 0x206, 64, "r", 0,
             "Frames dropped: rx_er during the frame, or lost in the clock crossing."),
    Register("RX_RUNTS", 0x208, 64, "r", 0, "Frames dropped: shorter than 64 bytes."),
    Register("RX_GIANTS", 0x20A, 64, "r", 0, "Frames dropped: longer than 1518 bytes."),
    Register("RX_PREAMBLE_ERRORS", 0x20C, 64, "r", 0,
             "Frames dropped: no SFD after the preamble."),
    Register("RX_OTHER", 0x20E, 64, "r", 0, "Good frames of other ethertypes (dropped)."),
    Register("RX_IP_ERRORS", 0x210, 64, "r", 0,
             "IPv4 frames dropped: bad header checksum, version, or length."),
    Register("RX_IP_OTHER", 0x212, 64, "r", 0,
             "IPv4 frames dropped: options, fragments, protocols other than UDP and ICMP, "
             "ICMP other than echo requests to the unit."),
    Register("RX_FOREIGN_UDP", 0x214, 64, "r", 0,
             "UDP datagrams without the signature, or with the signature of a stream the "
             "image does not carry (CAPS)."),
    Register("RX_SIGNED", 0x216, 64, "r", 0, "Signature datagrams: each one measured."),
    Register("ARP_RX", 0x218, 64, "r", 0, "ARP packets received."),
    Register("ARP_TX", 0x21A, 64, "r", 0, "ARP replies and requests sent."),
    Register("ICMP_RX", 0x21C, 64, "r", 0, "ICMP echo requests to the unit received."),
    Register("ICMP_TX", 0x21E, 64, "r", 0, "ICMP echo replies sent."),
    Register("REPLY_DROPPED", 0x220, 64, "r", 0,
             "ARP or ICMP requests not answered: a reply was still waiting for the line."),
    Register("UNIT_MAC", 0x230, 64, "rw", 0x02_77_73_00_00_01,
             "The unit's MAC address (bits 0-47), for ARP and ICMP."),
    Register("UNIT_IP", 0x232, 32, "rw", 0xC0A80002, "The unit's IPv4 address."),
    Register("ARP_TARGET", 0x233, 32, "rw", 0, "IPv4 address to resolve."),
    Register("ARP_CONTROL", 0x234, 32, "w", 0, "Bit 0: send an ARP request for ARP_TARGET."),
    Register("ARP_RESULT", 0x236, 64, "r", 0,
             "ARP_RESULT_FIELDS: whether ARP_TARGET answered since the last request, and its MAC."),
    Register("MDIO_COMMAND", 0x238, 32, "w", 0,
             "Starts an MDIO frame to the PHYs (MDIO_COMMAND_FIELDS): a write of `data`, or a read "
             "into MDIO_RESULT. Ignored while one is under way."),
    Register("MDIO_RESULT", 0x239, 32, "r", 0,
             f"MDIO_RESULT_FIELDS: the last read's data; `busy` for the {MDIO_CYCLES} "
             "control-clock cycles of a frame."),
    Register("RECORD_SAMPLE", 0x240, 32, "rw", 1,
             "Per-packet records: 0 none, 1 every packet, N one packet in N."),
    Register("RECORD_LEVEL", 0x241, 32, "r", 0, "Records waiting in the FIFO."),
    Register("RECORD_OVERFLOW", 0x242, 64, "r", 0, "Records lost because the FIFO was full."),
    Register("RECORD", 0x248, sum(w for _, w in RECORD_FIELDS), "r", 0,
             "The oldest record (RECORD_FIELDS); reading word 0 takes it out of the FIFO "
             "(all zero when empty).", pops=True),
    Register("STATS_SELECT", 0x250, 32, "rw", 0, "Stream whose STATS are read."),
    Register("STATS", 0x260, 32 * ((sum(w for _, w in STATS_FIELDS) + 31) // 32), "r", 0,
             "Receive statistics of stream STATS_SELECT (STATS_FIELDS)."),
    Register("HIST_SELECT", 0x251, 32, "rw", 0,
             "The stream and first bucket HIST_COUNTS reads (HIST_SELECT_FIELDS)."),
    Register("JITTER", 0x278, 32 * ((sum(w for _, w in JITTER_FIELDS) + 31) // 32), "r", 0,
             "Jitter and IPDV of stream STATS_SELECT (JITTER_FIELDS)."),
    Register("HIST_COUNTS", 0x280, 64, "r", 0,
             f"Packets in bucket HIST_SELECT.bucket + i of stream HIST_SELECT.stream, i < "
             f"{HIST_BURST}: one READ burst takes them all. Each word waits "
             f"{HIST_COUNT_CYCLES + 1} control-clock cycles for the tracker's count.",
             count=HIST_BURST),
]

STREAM_TABLE = Table("STREAM_TABLE", 0x1000, MAX_STREAMS, 16, [
    ("dst_mac", 48), ("src_mac", 48), ("src_ip", 32), ("dst_ip", 32),
    ("src_port", 16), ("dst_port", 16), ("ttl", 8), ("dscp", 6),
    ("enable", 1),          # START arms only enabled streams
    ("loop", 1),            # replay the profile from its first segment when it ends
    ("size_count", 4),      # how many entries of `sizes` are cycled (1..SIZES)
    ("sizes", SIZES * SIZE_BITS),  # frame sizes with FCS, entry i at bits 11*i
    ("count", COUNT_BITS),  # packets to send; 0: until the profile ends or STOP
    ("rate_mod", PHASE_BITS),  # rate denominator: packets per byte time = rate / rate_mod
    ("first_segment", 6),
], "Per-stream header template, frame sizes, packet count and profile start.")

SEGMENT_TABLE = Table("SEGMENT_TABLE", 0x2000, SEGMENTS, 8, [
    ("rate", PHASE_BITS),   # rate at the segment's start, in 1/rate_mod packets per byte time
    ("slope", 64),          # signed, added to the rate every tick, RATE_FRAC_BITS fraction bits
    ("ticks", 48),          # duration in ticks of TICK_CYCLES byte times; 0: forever
    ("last", 1),            # the profile's last segment
], "Rate-profile segments: linear in rate, chained in order until `last`.")

TABLES = [STREAM_TABLE, SEGMENT_TABLE]
SIGNED_FIELDS = {"slope"}                 # two's complement fields of the tables


def register(name):
    for reg in REGISTERS:
        if reg.name == name:
            return reg
    raise KeyError(name)


def _check_map():
    spans = [(r.addr, r.addr + r.words * r.count, r.name) for r in REGISTERS]
    spans += [(t.base, t.base + t.rows * t.stride, t.name) for t in TABLES]
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        assert end <= start, f"register map: {a} overlaps {b}"
    for t in TABLES:
        span = t.rows * t.stride
        assert t.row_words <= t.stride and t.stride & (t.stride - 1) == 0, t.name
        assert span & (span - 1) == 0 and t.base % span == 0, f"{t.name}: base not aligned"


_check_map()


_FIELD_SETS = [
    ("RECORD, and each record on the links (16 bytes, little-endian)", RECORD_FIELDS,
     f"`rx_ns`: the RX stamp's low 32 bits. `latency_ns`: RX − TX stamp. `flags`: "
     f"{RECORD_PACKET_FLAGS:#04x} the stream's last packet, {RECORD_CLIPPED:#04x} latency "
     f"outside 0..2³² − 1 ns (`latency_ns` then reads 2³² − 1), {RECORD_EPOCH:#04x} an epoch "
     f"mark: `seq` holds the RX stamps' high 32 bits for the records after it (its other "
     f"fields repeat the next record's)."),
    ("VERSION", VERSION_FIELDS, "The contract's version."),
    ("STATUS", STATUS_FIELDS, "`running`: from START until every stream has ended."),
    ("SNAPSHOT", SNAPSHOT_FIELDS, "`hold` 1: take a snapshot and show it; 0: live values."),
    ("ARP_RESULT", ARP_RESULT_FIELDS,
     "`answered`: ARP_TARGET answered since the last request (ARP_CONTROL clears it); `mac`: "
     "its MAC address."),
    ("CAPS", CAPS_FIELDS, f"A build carries {', '.join(map(str, BUILD_STREAMS))} streams; "
     f"`jitter` 1: the image has the jitter unit."),
    ("MDIO_COMMAND", MDIO_COMMAND_FIELDS, "`write` 1: write `data`; 0: read into MDIO_RESULT."),
    ("MDIO_RESULT", MDIO_RESULT_FIELDS, "IEEE 802.3 clause 22 register contents."),
    ("STATS", STATS_FIELDS, "`lost` is signed. Latencies in ns."),
    ("JITTER", JITTER_FIELDS,
     f"Per packet in arrival order, D = its latency − the stream's previous packet's (ns). "
     f"`jitter_q4`: RFC 3550 §6.4.1's J += (|D| − J)/16, in 1/{1 << JITTER_FRAC_BITS} ns "
     f"(the division rounds down). `ipdv_min`, `ipdv_max` (signed): the extremes of D "
     f"(RFC 3393); `ipdv_abs_sum`: the sum of |D|; `ipdv_pairs`: how many D."),
    ("HIST_SELECT", HIST_SELECT_FIELDS, "HIST_COUNTS element i is bucket `bucket` + i."),
]


def markdown():
    """docs/registers.md, generated from this module."""
    lines = ["# Register map", "",
             "Generated from `host/regmap.py` by `wirestamp regs` (`make docs`); do not edit.", "",
             f"Word addresses on the 32-bit register bus. Contract version "
             f"{VERSION >> 16}.{VERSION & 0xFFFF}.", "",
             "| address | name | width | access | reset | description |",
             "|---|---|---|---|---|---|"]
    for r in REGISTERS:
        addr = f"0x{r.addr:04X}" if r.count == 1 else \
            f"0x{r.addr:04X} + {r.words}·n (n < {r.count})"
        doc = r.doc.replace("|", "\\|")
        lines.append(f"| {addr} | {r.name} | {r.width} | {r.access} | 0x{r.reset:X} | {doc} |")
    sections = [(f"{t.name} (0x{t.base:04X} + {t.stride}·row + word, {t.rows} rows, write-only)",
                 t.fields, t.doc) for t in TABLES] + _FIELD_SETS
    for title, fields, doc in sections:
        lines += ["", f"## {title}", "", doc, "", "| bits | field |", "|---|---|"]
        shift = 0
        for name, width in fields:
            lines.append(f"| {shift}–{shift + width - 1} | {name} |")
            shift += width
    lines += ["", "## Payload signature (big-endian, first bytes of the UDP payload)", "",
              "| bytes | field |", "|---|---|"]
    offset = 0
    for name, width in SIGNATURE_FIELDS:
        lines.append(f"| {offset}–{offset + width // 8 - 1} | {name} |")
        offset += width // 8
    return "\n".join(lines) + "\n"
