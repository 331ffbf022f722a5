"""`wirestamp reflect`: the paper's "server", a UDP echo agent for the machine under test.

For each datagram that carries the wirestamp signature it notes three times (CLOCK_REALTIME,
ns): when the kernel received it (SO_TIMESTAMPING, software receive stamp: what tcpdump sees),
when the application got it, and when it sent the echo back. Rows go to a binary log in
chunks, so memory stays flat however long it runs. `split_round_trip` joins the log with the
unit's hardware records by (stream, seq): the round trip splits into inbound stack time
(kernel → application), application time, and the rest (outbound stack, NICs and wire).

It is not an open echo service (RFC 862's, and CVE-1999-0103's loop between two of them):
- it answers only datagrams that carry the unit's signature (`foreign` counts the others),
  unless `echo_all`;
- never a datagram from its own port or from the echo/daytime/chargen/time ports (7, 13, 19,
  37), so two reflectors, or a reflector and an echo service, cannot be set bouncing one
  forged packet between them (`looped` counts them);
- at most `max_pps` answers per second (a token bucket of a tenth of a second; `over_rate`
  counts what it dropped).
"""
import socket
import struct
import time

import numpy as np

from .records import SequenceExtender, join_key
from .regmap import unpack_signature

__all__ = ["REFLECTION_DTYPE", "Reflector", "read_log", "split_round_trip"]

SO_TIMESTAMPING = 37                    # Linux; Python's socket module has no constant for it
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
CHUNK = 4096

# `seq` extended across its 32-bit wrap (`records.SequenceExtender`), as in records.parquet.
REFLECTION_DTYPE = np.dtype([("stream", "<u1"), ("seq", "<u8"), ("kernel_rx_ns", "<i8"),
                             ("app_rx_ns", "<i8"), ("app_tx_ns", "<i8")])


SERVICE_PORTS = frozenset({7, 13, 19, 37})     # echo, daytime, chargen, time: never answered
MAX_PPS = 200_000


class Reflector:
    def __init__(self, port, bind="0.0.0.0", log=None, echo_all=False, max_pps=MAX_PPS):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING,
                             SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
        try:
            self.sock.bind((bind, port))
            self._log = None if log is None else open(log, "wb")  # noqa: SIM115 (close())
        except OSError:
            self.sock.close()
            raise
        self.port = self.sock.getsockname()[1]
        self.echo_all, self.max_pps = echo_all, max_pps
        self._tokens, self._refilled = max_pps / 10, time.monotonic()
        self.looped = 0             # from its own port or a service port: never answered
        self.over_rate = 0          # dropped above max_pps
        self._rows = np.zeros(CHUNK, dtype=REFLECTION_DTYPE)
        self._filled = 0
        self.reflected = 0
        self.foreign = 0
        self.unanswered = 0         # datagrams whose echo could not be sent (e.g. ENETUNREACH)
        self._sequences = SequenceExtender()
        self._stopping = False

    def stop(self):
        """End `serve` after the datagram in hand (within 0.2 s); safe from a signal handler."""
        self._stopping = True

    def serve(self, count=None, seconds=None):
        """Echo until `count` signature datagrams or `seconds` have passed."""
        deadline = None if seconds is None else time.monotonic() + seconds
        self.sock.settimeout(0.2)
        try:
            while not self._stopping and (count is None or self.reflected < count):
                if deadline is not None and time.monotonic() > deadline:
                    break
                try:
                    data, ancillary, _, peer = self.sock.recvmsg(2048, 256)
                except socket.timeout:
                    continue
                app_rx = time.clock_gettime_ns(time.CLOCK_REALTIME)
                kernel_rx = 0
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                        seconds_, nanoseconds = struct.unpack_from("qq", payload)
                        kernel_rx = seconds_ * 1_000_000_000 + nanoseconds
                signature = unpack_signature(data)
                if not signature:
                    self.foreign += 1
                    if not self.echo_all:
                        continue
                if peer[1] == self.port or peer[1] in SERVICE_PORTS:
                    self.looped += 1
                    continue
                if not self._take_token():
                    self.over_rate += 1
                    continue
                app_tx = time.clock_gettime_ns(time.CLOCK_REALTIME)   # the send starts
                try:
                    self.sock.sendto(data, peer)
                except OSError:         # no route back, buffer full…: count it, go on
                    self.unanswered += 1
                    continue
                if signature:
                    self._note(signature["stream"], signature["seq"], kernel_rx, app_rx, app_tx)
        finally:
            self.close()

    def _take_token(self):
        now = time.monotonic()
        self._tokens = min(self.max_pps / 10,
                           self._tokens + (now - self._refilled) * self.max_pps)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _note(self, stream, seq, kernel_rx, app_rx, app_tx):
        self._rows[self._filled] = (stream, self._sequences.extend_one(stream, seq),
                                    kernel_rx, app_rx, app_tx)
        self._filled += 1
        self.reflected += 1
        if self._filled == CHUNK:
            self._flush()

    def _flush(self):
        if self._log is not None:
            self._log.write(self._rows[:self._filled].tobytes())
        self._filled = 0

    def close(self):
        self._flush()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.sock.close()


def read_log(path):
    return np.fromfile(path, dtype=REFLECTION_DTYPE)


def split_round_trip(records, reflections):
    """Join hardware records (records.parquet's rows, seq extended) with reflections by
    (stream, seq); for each
    match: round trip, inbound stack (kernel → application), application, and the rest."""
    order = np.argsort(join_key(reflections))
    sorted_keys = join_key(reflections)[order]
    where = np.searchsorted(sorted_keys, join_key(records))
    where = np.minimum(where, len(sorted_keys) - 1)
    found = sorted_keys[where] == join_key(records)
    hw, host = records[found], reflections[order][where[found]]
    rtt = hw["rx_ns"].astype(np.int64) - hw["tx_ns"].astype(np.int64)
    inbound = host["app_rx_ns"] - host["kernel_rx_ns"]
    application = host["app_tx_ns"] - host["app_rx_ns"]
    return {"stream": hw["stream"], "seq": hw["seq"], "rtt_ns": rtt, "inbound_ns": inbound,
            "application_ns": application, "rest_ns": rtt - inbound - application}
