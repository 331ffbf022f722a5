"""Every register of a built image whose input misses the core clock, grouped, worst first.

nextpnr's log names one worst path per clock; fixing that one and building again (15 minutes
on the 25F) reveals the next. The report that `wirestamp build` leaves
(`wirestamp.report.json`, written with `--detailed-timing-report`) holds the latest arrival
time at every register input. This lists the inputs that arrive too late, grouped by the
register's block and name, with the cell that drives the worst one (its name usually tells
which signal feeds the logic).

Run: python benchmarks/failing_paths.py [build/boards/colorlight_5a75b] [MHz, default 125]
"""
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

CLOCK = re.compile(r"posedge (\$glbnet\$)?clk$")   # the core clock (out of context: `clk`)


def late_inputs(report, budget):
    """[(arrival ns, register cell, port, driving cell)] later than `budget`, core clock."""
    late = []
    for net in json.loads(report.read_text())["detailed_net_timings"]:
        if not CLOCK.match(net["event"]):
            continue
        for end in net["endpoints"]:
            if CLOCK.match(end["event"]) and end["delay"][1] > budget:
                late.append((end["delay"][1], end["cell"], end["port"], net["driver"]))
    return late


def block(cell):
    """The design block a cell belongs to: its hierarchical name, less the cell's own part."""
    name = re.sub(r"^\\", "", cell)
    name = re.sub(r"(_(TRELLIS_FF|LUT4|CCU2C|TRELLIS_DPR16X4|MULT18X18D|DP16KD)|\$CCU2).*", "",
                  name)
    return re.sub(r"\[\d+\]|\$\d+|_?\d+$", "", name)


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "build/boards/colorlight_5a75b")
    budget = 1000 / float(sys.argv[2] if len(sys.argv) > 2 else 125)
    groups = defaultdict(list)
    for arrival, cell, port, driver in late_inputs(folder / "wirestamp.report.json", budget):
        groups[block(cell)].append((arrival, f"{cell}.{port}", driver))
    print(f"{sum(map(len, groups.values()))} register inputs arrive later than {budget:.2f} ns, "
          f"{len(groups)} registers (count, worst arrival, its input and the cell driving it)")
    for name, late in sorted(groups.items(), key=lambda kv: -max(kv[1])[0]):
        arrival, endpoint, driver = max(late)
        print(f"{arrival:6.2f} ns {len(late):4}  {name}\n{'':16}{endpoint} <- {driver}")


if __name__ == "__main__":
    main()
