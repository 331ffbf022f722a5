"""The control link under damage, at length: the host's `Device` against the gateware's bridge
(the virtual board), through `sim.faults.FaultyLink`, which drops, corrupts, duplicates and
delays chunks of bytes both ways. Random sessions of 100 requests (`sim.faults.session`: every
request right or a LinkError, no write executed twice), until `--requests` frames have been
sent or `--seconds` have passed. Prints the frames sent, the faults done, the requests that
failed, and any wrong value or repeated write (there must be none).

    python benchmarks/link_fuzz.py [--requests 100000] [--seconds 1800] [--chance 0.02]
"""
import argparse
import random
import sys
import time
from collections import Counter

from wirestamp.sim.faults import FAULTS, OPS, FaultyLink, session
from wirestamp.sim.virtual import SimTransport


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--chance", type=float, default=0.02,
                        help="each fault's chance per chunk, both ways (default 0.02)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 0 <= args.chance <= 1 / len(FAULTS):
        parser.error(f"--chance {args.chance}: each of the {len(FAULTS)} faults' chance is "
                     f"0..{1 / len(FAULTS):g}")
    draws = random.Random(args.seed)
    link = FaultyLink(SimTransport(), longest_delay=0.05)
    chances = {name: args.chance for name in FAULTS}
    began = time.monotonic()
    sessions = asked = failed = 0
    wrong = []
    try:
        while link.requests < args.requests and time.monotonic() - began < args.seconds:
            ops = [(op, draws.randrange(2, 0x0A000000) if op == "write_ip" else None)
                   for op in draws.choices(OPS, k=100)]
            try:
                failed += session(link, draws.getrandbits(32), chances, ops)
            except AssertionError as error:
                wrong.append(str(error))
            sessions += 1
            asked += len(ops)
    finally:
        link.close()
    seconds = time.monotonic() - began
    faults = Counter({f"{direction} {fault}": n for (direction, fault), n in link.counts.items()})
    print(f"{link.requests:,} request frames sent (retries included) for {asked:,} requests "
          f"in {sessions:,} sessions, {seconds:.0f} s ({link.requests / seconds:,.0f}/s)")
    print("faults: " + ", ".join(f"{k} {v:,}" for k, v in sorted(faults.items())))
    print(f"{failed:,} requests ended in LinkError ({failed / max(asked, 1):.2%}); "
          f"wrong values or repeated writes: {len(wrong)}")
    for line in wrong[:10]:
        print("  " + line)
    if link.requests < args.requests:
        print(f"stopped at the {args.seconds:g} s limit, short of {args.requests:,}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
