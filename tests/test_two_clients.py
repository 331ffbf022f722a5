"""Two clients of one unit (issue 32): two `Device`s on one link, their writes interleaved
at random with reads, and every acknowledged WRITE executed (the unit's ARP_TX counts them;
benchmarks/two_clients.py runs 100,000). With each Device keeping its own tags, about one
write in a thousand was acknowledged and never executed."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import two_clients  # noqa: E402


def test_interleaved_writes_from_two_devices_are_all_executed():
    acknowledged, executed = two_clients.interleaved(20_000, seed=7)
    assert acknowledged == executed == 20_000
