"""The core clock's deepest paths in a built netlist, estimated before placement.

A full image build names one worst path per clock; this lists many at once. It reads the
netlist that `wirestamp build` left (`wirestamp.json`, after synthesis) and estimates every
register-to-register path in the core clock's domain with a crude delay model of the
LFE5U-25F-6: nextpnr's cell delays, and a wire that grows with the driver's fan-out (the
image's long wires belong to signals with many loads). The figures are estimates to rank
paths by, not timing: place and route decides (`wirestamp build`).

Run: python benchmarks/logic_depth.py [build/boards/colorlight_5a75b] [paths, default 25]
"""
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

CLOCK = "clk"                   # the core clock's net
CLK_TO_Q, SETUP = 0.52, 0.1     # TRELLIS_FF, ns
LUT, CARRY_IN, CARRY_THROUGH, CARRY_OUT = 0.24, 0.45, 0.07, 0.44
LUT_RAM_READ = 0.5              # TRELLIS_DPR16X4, read address to data
BLOCK_RAM_CLK_TO_DATA = 5.8     # DP16KD without its output register
MULTIPLY = 3.9                  # MULT18X18D without its registers


def wire(fanout):
    return 0.8 + 0.35 * math.log2(max(fanout, 1))


def analyse(netlist):
    top = max(json.loads(netlist.read_text())["modules"].values(), key=lambda m: len(m["cells"]))
    cells = top["cells"]
    names = {bit: name for name, net in top["netnames"].items() for bit in net["bits"]
             if isinstance(bit, int) and not name.startswith("$")}
    clock_bits = set(top["netnames"][CLOCK]["bits"]) if CLOCK in top["netnames"] else set()
    loads = defaultdict(list)               # bit -> [(cell, port)]
    driver = {}                              # bit -> (cell, port)
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            for bit in bits:
                if not isinstance(bit, int):
                    continue
                if cell["port_directions"].get(port) == "output":
                    driver[bit] = (name, port)
                else:
                    loads[bit].append((name, port))

    arrival = {}        # bit -> (ns, previous bit)

    def source_time(bit):
        if bit in arrival:
            return arrival[bit]
        arrival[bit] = (0.0, None)          # breaks loops; overwritten below
        if bit not in driver:
            return arrival[bit]
        name, port = driver[bit]
        cell = cells[name]
        kind = cell["type"]
        if kind == "TRELLIS_FF":
            result = (CLK_TO_Q if cell["connections"]["CLK"][0] in clock_bits else -99.0, None)
        elif kind == "DP16KD":
            result = (BLOCK_RAM_CLK_TO_DATA, None)
        elif kind in ("LUT4", "TRELLIS_DPR16X4", "MULT18X18D", "CCU2C"):
            if kind == "CCU2C":
                inputs = (["CIN"] + [p + port[-1] for p in "ABCD"]) if port != "COUT" else \
                    ["CIN", "A0", "B0", "C0", "D0", "A1", "B1", "C1", "D1"]
            elif kind == "TRELLIS_DPR16X4":
                inputs = ["RAD"]
            else:
                inputs = [p for p, d in cell["port_directions"].items() if d == "input"]
            best = (-99.0, None)
            for inport in inputs:
                for inbit in cell["connections"].get(inport, []):
                    if not isinstance(inbit, int):
                        continue
                    t, _ = source_time(inbit)
                    if kind == "CCU2C" and inport == "CIN":
                        t += CARRY_THROUGH if port == "COUT" else CARRY_OUT
                    else:
                        t += wire(len(loads[inbit])) + {"LUT4": LUT, "TRELLIS_DPR16X4":
                                                         LUT_RAM_READ, "MULT18X18D": MULTIPLY,
                                                         "CCU2C": CARRY_IN}[kind]
                    if t > best[0]:
                        best = (t, inbit)
            result = best
        else:
            result = (-99.0, None)
        arrival[bit] = result
        return result

    sys.setrecursionlimit(100_000)
    endpoints = []
    for name, cell in cells.items():
        if cell["type"] != "TRELLIS_FF" or cell["connections"]["CLK"][0] not in clock_bits:
            continue
        for port in ("DI", "CE", "LSR"):
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int):
                    t, _ = source_time(bit)
                    endpoints.append((t + wire(len(loads[bit])) + SETUP, bit, name))
    return endpoints, arrival, names, driver


def path_names(bit, arrival, names, driver):
    steps = []
    while bit is not None:
        steps.append(names.get(bit, driver.get(bit, ("?",))[0]))
        bit = arrival.get(bit, (0, None))[1]
    return [re.sub(r"_(TRELLIS_FF|LUT4|CCU2C)\S*", "", s) for s in reversed(steps)]


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "build/boards/colorlight_5a75b")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    endpoints, arrival, names, driver = analyse(folder / "wirestamp.json")
    endpoints.sort(reverse=True)
    shown = set()
    for ns, bit, sink in endpoints:
        steps = path_names(bit, arrival, names, driver)
        key = (re.sub(r"\d+", "", steps[0]), re.sub(r"\d+", "", sink))
        if key in shown:
            continue
        shown.add(key)
        print(f"{ns:5.2f} ns  {' -> '.join(dict.fromkeys(steps))} -> {sink}")
        if len(shown) == count:
            break


if __name__ == "__main__":
    main()
