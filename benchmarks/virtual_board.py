"""Speed of the virtual board: simulated clock cycles per second of wall time.

1. idle: the board's simulator alone (`board_main.cpp`), nothing to do;
2. traffic: through `sim://` as a user runs it, 64-byte frames at line rate into the echo model
   and back, every packet a record streamed to the host, the host reading them.
Goal (issue 5): at least 1,000,000 cycles/s.
"""
import sys
import time

import wirestamp
from wirestamp import regmap
from wirestamp.sim.virtual import _launch
from wirestamp.streams import Stream


def idle_rate(us):
    cycles = us * 1000 // regmap.NS_PER_CYCLE
    process, workdir = _launch({"dut": "loopback"}, idle_cycles=cycles)
    out, _ = process.communicate()
    workdir.cleanup()
    seconds = float(next(line for line in out.split(b"\n") if line.startswith(b"@T")).split()[1])
    return cycles / seconds


def traffic_rate(packets):
    with wirestamp.open("sim://?dut=echo&delay=3us") as device:
        device.configure([Stream("10.0.0.9", dst_mac="02:00:00:00:00:09", rate="line",
                                 count=packets)])
        began_ns, began = device.read_register("TIME"), time.perf_counter()
        device.start()
        received = 0
        for chunk in device.records():
            received += len(chunk)
            if received >= packets:
                break
        ended_ns, ended = device.read_register("TIME"), time.perf_counter()
    return (ended_ns - began_ns) / regmap.NS_PER_CYCLE / (ended - began), received


if __name__ == "__main__":
    us = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"idle: {idle_rate(us):,.0f} cycles/s over {us} us simulated")
    rate, received = traffic_rate(20_000)
    print(f"line-rate 64-byte echo, records streamed: {rate:,.0f} cycles/s "
          f"({received} records)")
