"""Speed of the virtual board: simulated clock cycles per second of wall time.

Runs the board idle (its clock in the Verilog wrapper, Python asleep) for a stretch of
simulated time, then with the paper's kind of traffic (64-byte frames at line rate through the
echo model), and prints cycles/s for each. Goal (issue 5): at least 1,000,000.
"""
import sys
import time

from wirestamp import regmap
from wirestamp.sim.virtual import _launch


def idle_rate(us):
    process, workdir = _launch({"dut": "loopback", "us": us}, testcase="idle")
    out, _ = process.communicate()
    workdir.cleanup()
    seconds = float(next(line for line in out.split(b"\n") if line.startswith(b"@T")).split()[1])
    return us * 1000 / regmap.NS_PER_CYCLE / seconds


if __name__ == "__main__":
    us = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"idle: {idle_rate(us):,.0f} cycles/s over {us} us simulated")
