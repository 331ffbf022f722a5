"""A control link that damages bytes both ways, for fuzzing the host against the real bridge.

`FaultyLink` wraps a transport (the virtual board's, whose bridge is the gateware's in
Verilator) and, chunk by chunk in each direction, delivers it, drops it, corrupts one byte,
sends it twice, or holds it back for a while. A serial line or a USB pipe is a byte stream:
bytes can be lost, changed, repeated or late, but never overtake each other, so a held chunk
holds back everything after it too. Each direction draws from its own seeded generator, and
`counts` says what was done.
"""
import random
import threading
import time
from collections import Counter, deque

__all__ = ["FaultyLink", "FAULTS", "session", "OPS"]

FAULTS = ("drop", "corrupt", "duplicate", "delay")


class FaultyLink:
    def __init__(self, inner, seed=0, drop=0.0, corrupt=0.0, duplicate=0.0, delay=0.0,
                 longest_delay=0.05):
        """`drop` … `delay`: each chunk's chance of that fault (their sum at most 1).
        A delay lasts up to `longest_delay` seconds, uniformly."""
        self.inner = inner
        self.hint = getattr(inner, "hint", "")
        self.chances = dict(drop=drop, corrupt=corrupt, duplicate=duplicate, delay=delay)
        if sum(self.chances.values()) > 1:
            raise ValueError("the faults' chances add up to more than 1")
        self.longest_delay = longest_delay
        self.enabled = True
        self.counts = Counter()                      # ("to_unit" | "from_unit", fault) → n
        self.requests = 0                            # frames the host sent (retries too)
        self._draws = {"to_unit": random.Random(seed), "from_unit": random.Random(~seed)}
        self._outgoing = deque()                     # (release time, bytes), in order
        self._incoming = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._sender.start()

    def damage(self, chances, seed):
        """Faults on from now, with `chances` ({fault: chance}), each direction's draws seeded
        from `seed`."""
        self.chances, self.enabled = chances, True
        self._draws["to_unit"].seed(seed)
        self._draws["from_unit"].seed(~seed)

    def _damaged(self, direction, data, queue):
        """`data` into `queue` [(release time, bytes)] as the fault drawn for it says."""
        now = time.monotonic()
        release = max(now, queue[-1][0]) if queue else now    # in order, behind held bytes
        if not self.enabled or not data:
            queue.append((release, data))
            return
        draws, draw = self._draws[direction], self._draws[direction].random()
        fault = None
        for name in FAULTS:
            if draw < self.chances[name]:
                fault = name
                break
            draw -= self.chances[name]
        if fault:
            self.counts[direction, fault] += 1
        if fault == "drop":
            return
        if fault == "corrupt":
            data = bytearray(data)
            data[draws.randrange(len(data))] ^= draws.randrange(1, 256)
            data = bytes(data)
        if fault == "duplicate":
            data += data
        if fault == "delay":
            release = max(release, now + draws.uniform(0, self.longest_delay))
        queue.append((release, data))

    # The transport interface.
    def write(self, data):
        self.requests += self.enabled
        with self._wake:
            self._damaged("to_unit", bytes(data), self._outgoing)
            self._wake.notify_all()

    def read(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self._incoming and self._incoming[0][0] <= now:
                out = bytearray()
                while self._incoming and self._incoming[0][0] <= now:
                    out += self._incoming.popleft()[1]
                return bytes(out)
            left = deadline - now
            if left <= 0:
                return b""
            if self._incoming:          # held bytes: wait for them, or for the deadline
                time.sleep(min(left, self._incoming[0][0] - now))
                continue
            data = self.inner.read(left)
            if data:
                self._damaged("from_unit", data, self._incoming)

    def settle(self, seconds):
        """Faults off; what is held back is delivered, and `seconds` later what has come back
        is thrown away: the link is clean again."""
        self.enabled = False
        with self._wake:
            while self._outgoing:
                self._wake.wait(0.01)
        time.sleep(seconds)
        while self.read(0.001):
            pass

    def close(self):
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._sender.join(timeout=5)
        self.inner.close()

    def _send_loop(self):
        """Delivers the outgoing chunks in order, each at its release time."""
        while True:
            with self._wake:
                while not self._outgoing and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                release, data = self._outgoing[0]
                wait = release - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                self._outgoing.popleft()
                self._wake.notify_all()
            self.inner.write(data)


# What `session` asks of the unit: read ID..CAPS, write or read UNIT_IP, or write ARP_CONTROL
# (each executed write sends one ARP request, so ARP_TX counts executions).
OPS = ("read_id", "write_ip", "read_ip", "arp")
ARP_TARGET = 0x0A090909         # never one of the UNIT_IP values drawn (2 .. 0x0A000000)


def session(link, seed, chances, ops, timeout=0.03, retries=3):
    """`ops` [(op, value)] through `link` damaged with `chances` (seeded by `seed`), by a new
    `Device`, as a new process would be. Every request must return the right value or raise
    LinkError, and no write may be executed twice (AssertionError otherwise). Returns the
    number of requests that failed with LinkError."""
    from .. import regmap
    from ..device import Device, LinkError
    clean = Device(link, timeout=0.5)
    clean.write_register("ARP_TARGET", ARP_TARGET)
    clean.write_register("UNIT_IP", 1)
    arp_before = clean.read_register("ARP_TX") + clean.read_register("REPLY_DROPPED")
    identity = [regmap.ID, regmap.VERSION, clean.read_register("CAPS")]
    link.damage(chances, seed)
    dev = Device(link, timeout=timeout, retries=retries)
    unit_ip = {1}               # what UNIT_IP may hold now (more than one after a LinkError)
    arp_ok = arp_unknown = failed = 0
    for op, value in ops:
        try:
            if op == "read_id":
                got = dev.read(regmap.register("ID").addr, 3)
                assert got == identity, f"ID, VERSION, CAPS read {got}"
            elif op == "write_ip":
                unit_ip.add(value)
                dev.write_register("UNIT_IP", value)
                unit_ip = {value}
            elif op == "read_ip":
                got = dev.read_register("UNIT_IP")
                assert got in unit_ip, f"UNIT_IP read {got:#x}, may hold {unit_ip}"
                unit_ip = {got}
            else:
                arp_unknown += 1
                dev.write_register("ARP_CONTROL", 1)
                arp_unknown, arp_ok = arp_unknown - 1, arp_ok + 1
        except LinkError:
            failed += 1
    link.settle(0.05)
    sent = clean.read_register("ARP_TX") + clean.read_register("REPLY_DROPPED") - arp_before
    assert arp_ok <= sent <= arp_ok + arp_unknown, \
        f"{sent} ARP requests for {arp_ok} acknowledged writes and {arp_unknown} failed ones"
    got = clean.read_register("UNIT_IP")
    assert got in unit_ip, f"UNIT_IP holds {got:#x}, may hold {unit_ip}"
    return failed
