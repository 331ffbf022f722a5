"""The reflector on this machine's loopback: signature datagrams come back unchanged, each
with its kernel receive stamp (SO_TIMESTAMPING), application and send times; the log joins
with hardware records by (stream, seq)."""
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from wirestamp import regmap
from wirestamp.device import RECORD_DTYPE
from wirestamp.reflect import Reflector, read_log, split_round_trip


def signature(stream, seq):
    return regmap.pack_signature(stream, seq) + b"payload"


def test_reflects_and_stamps(tmp_path):
    log = tmp_path / "reflections.bin"
    reflector = Reflector(0, bind="127.0.0.1", log=log)
    server = threading.Thread(target=reflector.serve, kwargs={"count": 50, "seconds": 20})
    server.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    echoes = []
    client.sendto(b"not ours", ("127.0.0.1", reflector.port))     # not answered
    for seq in range(50):
        client.sendto(signature(1, seq), ("127.0.0.1", reflector.port))
        echoes.append(client.recvfrom(2048)[0])
    server.join()
    assert echoes == [signature(1, seq) for seq in range(50)]
    rows = read_log(log)
    assert len(rows) == 50 and list(rows["seq"]) == list(range(50))
    assert reflector.foreign == 1
    assert (rows["kernel_rx_ns"] > 0).all(), "the kernel stamped every datagram"
    assert (rows["kernel_rx_ns"] <= rows["app_rx_ns"]).all()
    assert (rows["app_rx_ns"] <= rows["app_tx_ns"]).all()

    records = np.zeros(60, dtype=RECORD_DTYPE)
    records["stream"], records["seq"] = 1, np.arange(60)
    records["tx_ns"] = rows["kernel_rx_ns"][0] - 1000
    records["rx_ns"] = records["tx_ns"] + 100_000
    split = split_round_trip(records, rows)
    assert list(split["seq"]) == list(range(50)), "records without a reflection are left out"
    assert (split["inbound_ns"] + split["application_ns"] + split["rest_ns"] == 100_000).all()
    assert (split["inbound_ns"] >= 0).all()


def test_reflect_command_stops_by_itself(tmp_path, capsys):
    from wirestamp.cli import main
    assert main(["reflect", "--port", "0", "--bind", "127.0.0.1", "--out",
                 str(tmp_path / "log.bin"), "--duration", "300ms"]) == 0
    assert "0 signature datagrams reflected" in capsys.readouterr().err
    assert read_log(tmp_path / "log.bin").size == 0


def test_reflect_command_flushes_on_a_signal_even_if_started_with_sigint_ignored(tmp_path):
    """A background job's children inherit SIGINT ignored; the reflector must still stop
    cleanly (the Linux DUT of the virtual board stops it so) and keep what it logged."""
    log = tmp_path / "log.bin"
    process = subprocess.Popen(
        [sys.executable, "-m", "wirestamp.cli", "reflect", "--port", "0", "--bind",
         "127.0.0.1", "--out", str(log)], stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        port = int(process.stderr.readline().split(",")[0].rsplit(":", 1)[1])
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(5)
        for seq in range(3):
            client.sendto(signature(1, seq), ("127.0.0.1", port))
            client.recvfrom(2048)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    assert list(read_log(log)["seq"]) == [0, 1, 2]


def test_a_datagram_it_cannot_answer_is_counted_and_serving_goes_on(tmp_path):
    import errno
    reflector = Reflector(0, bind="127.0.0.1", log=tmp_path / "log.bin")
    real_sendto, calls = reflector.sock.sendto, []

    class Unreachable:                 # a socket whose first send finds no route back
        def __getattr__(self, name):
            return getattr(real_sock, name)

        def sendto(self, data, peer):
            calls.append(peer)
            if len(calls) == 1:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            return real_sendto(data, peer)
    real_sock, reflector.sock = reflector.sock, Unreachable()
    server = threading.Thread(target=reflector.serve, kwargs={"count": 3, "seconds": 20})
    server.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    client.sendto(signature(0, 0), ("127.0.0.1", reflector.port))   # unanswerable
    for seq in (1, 2, 3):
        client.sendto(signature(0, seq), ("127.0.0.1", reflector.port))
        assert client.recvfrom(2048)[0] == signature(0, seq)
    server.join()
    assert reflector.unanswered == 1 and reflector.reflected == 3


def test_the_log_extends_seq_across_the_wrap(tmp_path):
    log = tmp_path / "log.bin"
    reflector = Reflector(0, bind="127.0.0.1", log=log)
    for seq in (2**32 - 1, 0, 1):
        reflector._note(2, seq, 0, 0, 0)
    reflector.close()
    assert read_log(log)["seq"].tolist() == [2**32 - 1, 2**32, 2**32 + 1]


def test_two_reflectors_do_not_bounce_a_forged_datagram(tmp_path):
    """The echo/chargen loop (CVE-1999-0103): a datagram forged to come from one reflector's
    port, sent to another on the same port (two machines running the default 5001), would
    bounce between them forever. A reflector never answers a datagram from its own port."""
    a = Reflector(0, bind="127.0.0.1", log=tmp_path / "a.bin")
    b = Reflector(a.port, bind="127.0.0.2", log=tmp_path / "b.bin")
    threads = [threading.Thread(target=r.serve, kwargs={"seconds": 1.0}) for r in (a, b)]
    for t in threads:
        t.start()
    b.sock.sendto(signature(0, 1), ("127.0.0.1", a.port))    # "from b's reflector" to a
    for t in threads:
        t.join()
    assert a.reflected == b.reflected == 0 and a.looped == 1
    chargen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    chargen.bind(("127.0.0.1", 19))                             # (root) chargen's port
    c = Reflector(0, bind="127.0.0.1", log=tmp_path / "c.bin")
    chargen.sendto(signature(0, 3), ("127.0.0.1", c.port))
    c.serve(seconds=0.5)
    chargen.close()
    assert c.reflected == 0 and c.looped == 1


def test_only_signature_datagrams_are_echoed_by_default(tmp_path):
    r = Reflector(0, bind="127.0.0.1", log=tmp_path / "r.bin")
    server = threading.Thread(target=r.serve, kwargs={"seconds": 1.0})
    server.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(0.3)
    client.sendto(b"anything", ("127.0.0.1", r.port))
    try:
        client.recvfrom(2048)
        answered = True
    except socket.timeout:
        answered = False
    server.join()
    assert not answered and r.foreign == 1 and r.reflected == 0


def test_the_rate_is_bounded(tmp_path):
    r = Reflector(0, bind="127.0.0.1", log=tmp_path / "r.bin", max_pps=100)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for seq in range(500):                   # at once: far above 100 per second
        client.sendto(signature(0, seq), ("127.0.0.1", r.port))
    began = time.monotonic()
    r.serve(seconds=0.5)
    # the bucket holds a tenth of a second (10), then refills at 100 per second
    assert r.over_rate > 0 and r.reflected <= 10 + 100 * (time.monotonic() - began) + 1


@pytest.mark.parametrize("args, said", [
    (["--port", "70000"], "--port 70000"),
    (["--bind", "256.1.1.1"], "--bind '256.1.1.1'"),
    (["--bind", "10.255.255.1"], "not an address of this machine"),
    (["--out", "/nonexistent-folder/r.bin"], "does not exist"),
    (["--max-rate", "0"], "--max-rate"),
])
def test_bad_reflect_arguments_are_one_line(args, said, capsys):
    from wirestamp.cli import main
    assert main(["reflect", "--bind", "127.0.0.1", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "Traceback" not in err


def test_a_port_in_use_is_one_line(capsys):
    from wirestamp.cli import main
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    try:
        assert main(["reflect", "--bind", "127.0.0.1", "--port",
                     str(holder.getsockname()[1])]) == 2
    finally:
        holder.close()
    assert "another program listens there" in capsys.readouterr().err
