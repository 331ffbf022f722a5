"""Speed of the virtual board: simulated clock cycles per second of wall time.

1. idle: the board's simulator alone (`board_main.cpp`), nothing to do;
2. traffic: through `sim://` as a user runs it, 64-byte frames at line rate into the echo model
   and back, every packet a record streamed to the host (over the control link's frames, and
   over `link=usb`: the usb:// transport through pyusb, records raw), with the records
   expected, received and lost. Each run has a time limit and reports what arrived.
Goal (issue 5): at least 1,000,000 cycles/s.
"""
import json
import os
import signal
import sys
import time

import wirestamp
from wirestamp import regmap
from wirestamp.sim.virtual import _launch
from wirestamp.streams import Stream


def idle_rate(us):
    cycles = us * 1000 // regmap.NS_PER_CYCLE
    process, workdir, _ = _launch({"dut": "loopback"}, idle_cycles=cycles)
    out, _ = process.communicate()
    workdir.cleanup()
    seconds = float(next(line for line in out.split(b"\n") if line.startswith(b"@T")).split()[1])
    return cycles / seconds


def traffic_rate(packets, link="serial", seconds=300):
    """Cycles/s of a line-rate run through `sim://?link=LINK`, and its records account
    (`run_measurement`'s: expected, received, lost, FIFO overflow). Ends after `seconds` of
    wall time at most, reporting what arrived, instead of waiting for records that will not
    come."""
    import tempfile
    import threading
    from pathlib import Path

    from wirestamp.run import Interrupted, run_measurement
    with wirestamp.open(f"sim://?dut=echo&delay=3us&link={link}") as device:
        stream = Stream("10.0.0.9", dst_mac="02:00:00:00:00:09", rate="line", count=packets)
        began_ns, began = device.read_register("TIME"), time.perf_counter()
        timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        out = Path(tempfile.mkdtemp(prefix="wirestamp-bench-"))
        try:
            summary = run_measurement(device, [stream], out, progress=False)
        except Interrupted:          # the summary is written, marked interrupted
            print(f"time limit ({seconds} s) reached")
            summary = json.loads((out / "summary.json").read_text())
        finally:
            timer.cancel()
        ended_ns, ended = device.read_register("TIME"), time.perf_counter()
    return (ended_ns - began_ns) / regmap.NS_PER_CYCLE / (ended - began), summary


if __name__ == "__main__":
    us = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"idle: {idle_rate(us):,.0f} cycles/s over {us} us simulated")
    for link in ("serial", "usb"):
        rate, summary = traffic_rate(20_000, link)
        records = summary["records"] if summary else {}
        print(f"line-rate 64-byte echo, link={link}: {rate:,.0f} cycles/s; records expected "
              f"{records.get('expected')}, received {records.get('received')}, lost "
              f"{records.get('lost')} (FIFO overflow {records.get('fifo_overflow')})")
