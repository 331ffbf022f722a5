"""The virtual board: `wirestamp.open("sim://?dut=echo&delay=3us")`.

The whole gateware core runs in Verilator (`board.py`, in the plain loop of `board_main.cpp`)
in a child process; this module is the transport the `Device` talks through, exactly as it talks
through a serial port. A reader thread takes the child's printed lines: control bytes go to
the `Device`, frames seen on the wire go to the pcapng file and (for `dut=linux`) into the TAP
device, and the echo model's account of what it did goes to `truth` (and its file).

URL query (all optional):
    dut=loopback|echo|linux   what the wire attaches to (default loopback)
    delay=3us | uniform:2us-5us | exp:20us    the echo's delay (default 10us; at least 512 ns)
    loss=, dup=, reorder=     probabilities per request (echo), seed=N
    capacity=300kpps | 400mbps, queue=FRAMES   the echo as a bottleneck of known capacity:
                              a FIFO of FRAMES frames (default 64) drained at the rate
                              (bits of frames, FCS included); a frame finding it full is
                              dropped and counted as `full` (`models.EchoModel`). It adds to
                              delay= (give a short one); it excludes dup= and reorder=
    wire_pcap=PATH            every frame on the wire, both ways, nanosecond pcapng
    truth=PATH                the echo model's lines (`models.py`)
    netns=NAME, ip=A.B.C.D    the Linux DUT's namespace and address (`linux.py`)
    port=N                    the UDP port its reflector listens on (default 5001)
    link=serial|usb           how the host reaches the board: its control link's frames
                              (default), or the usb:// transport's own code through pyusb
                              (`usb_backend.py`), with records raw on EP2
    cable=plugged|unplugged   unplugged: the PHY reports link down (`wirestamp info`), and
                              no frame passes either way
    link_loss=P, link_corrupt=P   control-link damage, both directions, seeded by seed=: each
                              frame (or part of one, as the bytes arrive) is dropped with
                              probability P, or has one byte changed; the `Device` must
                              detect it and retry, so the counts stay exact
"""
import fcntl
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from .. import regmap
from ..device import LinkError
from ..units import parse_duration, parse_quantity
from .board import DUTS
from .models import ACTIONS, DELAY_TABLE, HOLD_LIMIT, MIN_DELAY_CYCLES
from .pcapng import PcapNgWriter
from .runner import BOARD, _build_root, build_core

__all__ = ["SimTransport", "delay_table", "delay_model", "from_query"]

DELAY_LIMIT = 1 << 32           # cycles: the echo model's delay counters are 32 bits
QUEUE_LIMIT = 192               # capacity queue frames: the model holds 256 in all, with
                                # room for those its delay keeps in flight
CONTROL_BUFFER = 16 << 20       # bytes from the board not yet read; more are dropped (counted)


def delay_table(spec):
    """The echo model's delay table (cycles, `DELAY_TABLE` entries) for `spec`."""
    return delay_model(spec)[0]


def delay_model(spec):
    """(table, octave, longest ns) of the echo model for `spec` (`models.EchoModel`).

    A fixed delay fills the table; `uniform:` holds its quantiles. `exp:MEAN` is the floor
    (`MIN_DELAY_CYCLES`) plus an exponential of the rest of the mean with a real tail: the
    table holds ln 2 − ln(1 + f) over 10 bits of f and `octave` (the scale × ln 2, in cycles)
    is added once per leading zero of the 32-bit draw. The longest delay it can give is
    floor + 32·ln 2 × scale (22.2 times the scale: 432.8 µs for exp:20us), drawn once in 2³²
    packets; a million packets reach about 13.8 times the scale, as a true exponential would."""
    ns_per_cycle = regmap.NS_PER_CYCLE
    kind, _, rest = spec.partition(":")
    quantiles = (np.arange(DELAY_TABLE) + 0.5) / DELAY_TABLE
    octave = 0
    if not rest:
        ns = parse_duration(spec) * 10**9
        if ns % ns_per_cycle:
            raise ValueError(f"delay={spec}: the virtual board's clock ticks every "
                             f"{ns_per_cycle} ns; use a multiple of it")
        table = np.full(1, int(ns) // ns_per_cycle)
    elif kind == "uniform":
        low, _, high = rest.partition("-")
        low, high = (float(parse_duration(x)) * 1e9 for x in (low, high))
        table = np.rint((low + (high - low) * quantiles) / ns_per_cycle)
    elif kind == "exp":
        mean = float(parse_duration(rest)) * 1e9
        floor = MIN_DELAY_CYCLES * ns_per_cycle
        if mean <= floor:
            raise ValueError(f"delay={spec}: the mean must exceed {floor} ns")
        scale = (mean - floor) / ns_per_cycle
        table = np.rint(floor / ns_per_cycle + scale * (math.log(2) - np.log1p(quantiles)))
        octave = max(round(scale * math.log(2)), 1)
    else:
        raise ValueError(f"delay={spec}: use 3us, uniform:2us-5us or exp:20us")
    if table.min() < MIN_DELAY_CYCLES:
        raise ValueError(f"delay={spec}: the echo model needs at least "
                         f"{MIN_DELAY_CYCLES * ns_per_cycle} ns")
    if table.max() + 31 * octave >= DELAY_LIMIT:
        raise ValueError(f"delay={spec}: the echo model holds delays below "
                         f"{DELAY_LIMIT * ns_per_cycle / 1e9:.2f} s (its 32-bit cycle count)")
    # A short table is repeated to fill the model's.
    table = np.resize(table.astype(np.int64), DELAY_TABLE).tolist()
    longest = (max(table) + 31 * octave) * ns_per_cycle
    return table, octave, longest


def model_seed(seed):
    """The echo model's xorshift32 state for `seed`: the seed mixed by SplitMix64's finaliser
    (Steele, Lea and Flood, 2014), never 0. xorshift32 started from a small seed gives small
    first draws (seeds 1 to 6 all drew under 2 % three times running, so loss=0.02 dropped the
    first requests, ARP's among them, whatever the seed); a mixed state draws uniformly from
    the first."""
    z = (seed * 0x9E3779B97F4A7C15) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) & 0xFFFF_FFFF or 1


def _probability(name, value):
    try:
        p = float(value)
    except ValueError:
        p = math.nan
    if not 0 <= p <= 1:
        raise ValueError(f"{name}={value}: a probability is between 0 and 1")
    return p


def _threshold(name, value):
    return round(_probability(name, value) * 2**32)


def _port(value):
    if not value.isdigit() or not 1 <= int(value) <= 0xFFFF:
        raise ValueError(f"port={value}: a UDP port is 1..65535")
    return int(value)


def _link(value):
    if value not in ("serial", "usb"):
        raise ValueError(f"link={value}: use serial (the control link's frames, the default) "
                         f"or usb (the usb:// transport through pyusb)")
    return value


def _cable(value):
    if value not in ("plugged", "unplugged"):
        raise ValueError(f"cable={value}: use plugged (the default) or unplugged")
    return value == "unplugged"


def capacity_model(capacity, queue):
    """The echo's (queue_frames, frame_service, byte_service) inputs for `capacity` (pps or
    bits/s, a string like 300kpps) and `queue` frames; services are cycles, 16 fractional bits.
    (0, 0, 0) without a capacity."""
    if capacity is None:
        if queue is not None:
            raise ValueError("queue=: give it with capacity= (a FIFO of that many frames "
                             "drained at that rate)")
        return 0, 0, 0
    value, unit = parse_quantity(capacity, "capacity")
    if value <= 0:
        raise ValueError(f"capacity={capacity}: a rate above 0")
    frames = 64 if queue is None else queue
    if not str(frames).isdigit() or not 1 <= int(frames) <= QUEUE_LIMIT:
        raise ValueError(f"queue={queue}: a number of frames, 1..{QUEUE_LIMIT}")
    service = round(regmap.CLOCK_HZ * 2**16 * (8 if unit == "bps" else 1) / value)
    if not 0 < service < 2**48:
        raise ValueError(f"capacity={capacity}: out of the model's range")
    return (int(frames), 0, service) if unit == "bps" else (int(frames), service, 0)


def from_query(query):
    """`SimTransport` from the parsed `sim://` query (a dict of strings)."""
    known = {"dut", "delay", "loss", "dup", "reorder", "seed", "wire_pcap", "truth", "netns",
             "ip", "port", "timeout", "retries", "link_loss", "link_corrupt", "link", "cable",
             "capacity", "queue"}
    unknown = set(query) - known
    if unknown:
        raise ValueError(f"sim://: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    for name in ("wire_pcap", "truth"):         # files the run writes: their folder exists
        if query.get(name) and not Path(query[name]).resolve().parent.is_dir():
            raise ValueError(f"{name}={query[name]}: the folder "
                             f"{Path(query[name]).resolve().parent} does not exist")
    if "ip" in query:
        from ..streams import unicast_ipv4
        unicast_ipv4(query["ip"], "ip")
    if "netns" in query and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", query["netns"]):
        raise ValueError(f"netns={query['netns']}: a namespace name of letters, digits, "
                         f"'.', '_' and '-'")
    if "seed" in query and not query["seed"].isdigit():
        raise ValueError(f"seed={query['seed']}: a whole number")
    return SimTransport(dut=query.get("dut", "loopback"), delay=query.get("delay", "10us"),
                        loss=query.get("loss", 0), dup=query.get("dup", 0),
                        reorder=query.get("reorder", 0), seed=int(query.get("seed", 1)),
                        wire_pcap=query.get("wire_pcap"), truth=query.get("truth"),
                        netns=query.get("netns"), ip=query.get("ip"),
                        port=_port(query.get("port", "5001")),
                        link_loss=query.get("link_loss", 0),
                        link_corrupt=query.get("link_corrupt", 0),
                        usb_records=_link(query.get("link", "serial")) == "usb",
                        unplugged=_cable(query.get("cable", "plugged")),
                        capacity=query.get("capacity"), queue=query.get("queue"))


class SimTransport:
    def __init__(self, dut="loopback", delay="10us", loss=0, dup=0, reorder=0, seed=1,
                 wire_pcap=None, truth=None, netns=None, ip=None, link_loss=0,
                 link_corrupt=0, usb_records=False, port=5001, unplugged=False, capacity=None,
                 queue=None):
        if dut not in DUTS:
            raise ValueError(f"dut={dut}: use one of {', '.join(DUTS)}")
        drop = _threshold("loss", loss)
        duplicate = drop + _threshold("dup", dup)
        hold = duplicate + _threshold("reorder", reorder)
        if hold > 2**32:
            raise ValueError("loss + dup + reorder must not exceed 1")
        params = {"dut": dut, "capture": bool(wire_pcap) or dut == "linux", "usb": usb_records,
                  "unplugged": unplugged,
                  "drop_below": drop, "duplicate_below": duplicate, "hold_below": hold,
                  "seed": model_seed(seed)}
        params["queue"], params["frame_service"], params["byte_service"] = \
            capacity_model(capacity, queue)
        if params["queue"] and (dut != "echo" or hold > drop):
            raise ValueError("capacity=: the echo model's (dut=echo), without dup= or reorder=")
        if dut == "echo":
            params["table"], params["octave"], longest_ns = delay_model(delay)
        else:
            longest_ns = 0
        # How long packets can stay in flight: the longest delay, and a frame held for
        # reordering (HOLD_LIMIT), with room for the frames themselves. `run` waits this long
        # on the unit's clock after the streams end; the kernel (dut=linux) answers in
        # microseconds of wall time, which are far fewer of the simulated clock.
        drain_ns = params["queue"] * (params["frame_service"] + regmap.MAX_FRAME
                                      * params["byte_service"]) / 2**16 * regmap.NS_PER_CYCLE
        self.settle_s = (longest_ns + drain_ns + HOLD_LIMIT * regmap.NS_PER_CYCLE) * 1e-9 + 1e-4
        # What a reader of the figures must know (the run's summary and console carry it).
        self.notice = None if dut != "linux" else (
            "the virtual board's clock is simulated and the kernel's is real: the kernel "
            "answers in microseconds of wall time, which pass while the simulator runs only "
            "a few nanoseconds of the unit's, so the kernel's share of each latency here is "
            "compressed some thousand times. The kernel's own stack times are measured on "
            "wall clocks by `wirestamp demo --dut linux` (docs/virtual.md)")
        self._pcap = PcapNgWriter(wire_pcap) if wire_pcap else None
        self._truth_file = open(truth, "w") if truth else None  # noqa: SIM115 (closed in close)
        self.truth = Counter()          # the echo model's actions (models.ACTIONS), "not udp"
        self.delays = Counter()         # reply delay (ns) → count, as the model measured them
        self.control_dropped = 0
        self._record_bytes = bytearray()    # "@D" lines (usb_records): EP2's byte stream
        self.record_bytes_dropped = 0
        self.hint = ("the virtual board did not answer: it may be hung, or starved of CPU "
                     "(try ?timeout=5)")
        self._link = (_probability("link_loss", link_loss),
                      _probability("link_corrupt", link_corrupt))
        self._to_board, self._from_board = random.Random(seed), random.Random(~seed)
        self.link_damage = Counter()    # control-link frames "lost" and "corrupted" on purpose
        self._control = bytearray()
        self._arrived = threading.Condition()
        self._frames = {0: None, 1: None}
        self.linux = None
        self._ready = threading.Event()
        self._process, self._workdir, self._lock = _launch(params)
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()
        try:                    # an interrupt while starting leaves nothing running
            self._wait_until_ready()
            if dut == "linux":
                from .linux import LinuxDut
                self.linux = LinuxDut(self._send_frame, netns=netns, ip=ip, port=port)
        except BaseException:
            self.close()
            raise

    # The transport interface (`Device` uses these).
    def write(self, data):
        self._send(b"C", self._damage(data, self._to_board))

    def read(self, timeout):
        with self._arrived:
            if not self._control:
                self._arrived.wait(timeout)
            data = bytes(self._control)
            self._control.clear()
        if not data and self._process.poll() is not None:
            raise LinkError(f"the virtual board has stopped{self._last_words()}")
        return data

    def ended(self):
        """Whether the simulator has exited: the unit is gone, and nothing transmits."""
        return self._process.poll() is not None

    def close(self):
        if self._workdir is None:
            return
        if self.linux:
            self.linux.close()
        if self._process.poll() is None:
            try:
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=10)
        if self._pcap:
            self._pcap.close()
        if self._truth_file:
            self._truth_file.close()
        self._workdir.cleanup()
        self._workdir = None
        os.close(self._lock)

    def _last_words(self):
        lines = self.log_tail().strip().splitlines()
        return f"; the last line of its log: {lines[-1]}" if lines else ""

    def log_tail(self, size=3000):
        log = Path(self._workdir.name) / "sim.log"
        return log.read_text(errors="replace")[-size:] if log.exists() else ""

    # Inside.
    def _wait_until_ready(self, timeout=300):
        """Requests sent before the simulator listens would time out (it takes a moment to
        start, more on a loaded machine), so wait for its "@R"."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.log_tail()
                raise LinkError("the virtual board did not start; the last line of its log: "
                                + (log.strip().splitlines() or ["(empty)"])[-1])

    def _send(self, kind, payload):
        with self._write_lock:
            try:
                self._process.stdin.write(kind + len(payload).to_bytes(4, "big") + payload)
                self._process.stdin.flush()
            except BrokenPipeError:
                raise LinkError(f"the virtual board has stopped{self._last_words()}") from None

    def _send_frame(self, frame):
        self._send(b"F", frame)

    def _read_lines(self):
        for line in self._process.stdout:
            if line[:1] != b"@":
                continue
            kind, direction, rest = line[1:2], line[2:3], line[3:].decode().split()
            if kind == b"C":
                self._control_bytes(bytes.fromhex(rest[1])[-int(rest[0]):])
            elif kind in b"WBE" and direction in b"01":
                self._wire(kind, int(direction), rest)
            elif kind == b"D":
                self._record_line(bytes.fromhex(rest[0])[::-1])     # little-endian, as on EP2
            elif kind == b"R":
                self._ready.set()
            elif kind in b"IOS":
                self._model(kind, [int(x) for x in rest])
        with self._arrived:
            self._arrived.notify_all()

    def take_records(self, size, timeout):
        """Up to `size` bytes of the raw record stream (`usb_records`), waiting up to
        `timeout` seconds for some: what the board's EP2 would send."""
        with self._arrived:
            if not self._record_bytes:
                self._arrived.wait(timeout)
            data = bytes(self._record_bytes[:size])
            del self._record_bytes[:size]
        if not data and self._process.poll() is not None:
            raise LinkError(f"the virtual board has stopped{self._last_words()}")
        return data

    def _record_line(self, record):
        self.record_bytes_dropped += self._keep(self._record_bytes, record)

    def _keep(self, buffer, data):
        """`data` onto `buffer` for the host, unless that would pass CONTROL_BUFFER: then it
        is dropped whole (a record line stays aligned) and its size returned, for counting."""
        with self._arrived:
            kept = len(buffer) + len(data) <= CONTROL_BUFFER
            if kept:
                buffer += data
            self._arrived.notify_all()
        return 0 if kept else len(data)

    def _damage(self, data, draws):
        """`data` after the link's damage (`link_loss`, `link_corrupt`), frame by frame;
        `draws` is the direction's own seeded generator, so a run repeats exactly."""
        loss, corrupt = self._link
        if not (loss or corrupt):
            return data
        out = bytearray()
        pieces = data.split(b"\xc0")           # SLIP's END: the last piece has none
        for i, piece in enumerate(pieces):
            end = b"\xc0" if i < len(pieces) - 1 else b""
            draw = draws.random() if piece else 1.0
            if draw < loss:
                self.link_damage["lost"] += 1
                continue
            if draw < loss + corrupt:
                self.link_damage["corrupted"] += 1
                piece = bytearray(piece)
                piece[draws.randrange(len(piece))] ^= draws.randrange(1, 256)
            out += piece + end
        return bytes(out)

    def _control_bytes(self, data):
        self.control_dropped += self._keep(self._control, self._damage(data, self._from_board))

    def _wire(self, kind, direction, fields):
        if kind == b"W":
            self._frames[direction] = (int(fields[0]), bytearray())
            return
        if self._frames[direction] is None:
            return
        stamp, frame = self._frames[direction]
        if kind == b"B":
            frame += bytes.fromhex(fields[0])
            return
        count = int(fields[0])
        if count:
            frame += bytes.fromhex(fields[1])[-count:]
        self._frames[direction] = None
        if self._pcap:
            self._pcap.write(stamp, bytes(frame), inbound=direction == 1)
        if self.linux and direction == 0:
            self.linux.deliver(bytes(frame[:-4]))

    def _model(self, kind, values):
        ns = regmap.NS_PER_CYCLE
        if self._truth_file:
            self._truth_file.write(f"{kind.decode()} {' '.join(map(str, values))}\n")
        if kind == b"I":
            self.truth[ACTIONS[values[2]]] += 1
        elif kind == b"O":
            self.delays[(values[2] - values[1]) * ns] += 1
        else:
            self.truth["not udp"] += 1


def _launch(params, idle_cycles=None):
    """Start the board's simulator (`board_main.cpp`, built by Verilator) in a session of its
    own: a terminal's Ctrl-C (or `timeout`, systemd, a CI runner) signals the whole process
    group, and would end the simulator, and with it the unit, before the host has stopped the
    streams and read the results. It ends when its stdin closes, so it never outlives the
    host, even one killed by SIGKILL. Its folder is locked while it runs (`remove_leftovers`).
    Returns (process, folder, lock descriptor)."""
    _, build_dir = build_core(BOARD)
    remove_leftovers()
    workdir = tempfile.TemporaryDirectory(prefix="wirestamp-board-", dir=_build_root())
    lock = os.open(Path(workdir.name) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    table = Path(workdir.name) / "delays.txt"
    table.write_text("".join(f"{cycles}\n" for cycles in params.get("table", [])))
    command = [str(build_dir / BOARD), "--dut", str(DUTS.index(params["dut"])),
               "--capture", str(int(params.get("capture", False))),
               "--drop", str(params.get("drop_below", 0)),
               "--dup", str(params.get("duplicate_below", 0)),
               "--hold", str(params.get("hold_below", 0)), "--seed", str(params.get("seed", 1)),
               "--octave", str(params.get("octave", 0)), "--usb", str(int(params.get("usb", 0))),
               "--unplugged", str(int(params.get("unplugged", 0))),
               "--queue", str(params.get("queue", 0)),
               "--frame-service", str(params.get("frame_service", 0)),
               "--byte-service", str(params.get("byte_service", 0)),
               "--table", str(table)]
    if idle_cycles:
        command += ["--idle", str(idle_cycles)]
    with open(Path(workdir.name) / "sim.log", "wb") as log:
        process = subprocess.Popen(command, cwd=workdir.name, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    return process, workdir, lock


def remove_leftovers():
    """The folders of virtual boards whose host died without cleaning up (SIGKILL): a live
    board's folder is locked by its host; an unlocked one is removed. Returns how many."""
    removed = 0
    for folder in _build_root().glob("wirestamp-board-*"):
        try:
            fd = os.open(folder / ".lock", os.O_RDWR)
        except FileNotFoundError:       # from before the lock, or still being made: by age
            if time.time() - folder.stat().st_mtime < 3600:
                continue
            fd = None
        except OSError:
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            if fd is not None:
                os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed
