"""The images CI builds with the pip-installed YoWASP tools: the Colorlight 5A-75B (LFE5U-25F
speed 6, the slowest target) and the ECPIX-5 (LFE5UM5G-85F-8, with the USB device). Each fits,
and each clock's Fmax after routing is checked against the frequency it runs at: the core
125 MHz, the control clock 62.5 MHz, the PHY's receive clock 125 MHz, and on the ECPIX-5 the
ULPI clock 60 MHz. Each takes 8 to 10 minutes, beside the rest of the suite (pytest-xdist may
run both on one worker: the whole suite then took 21.5 minutes on 2 cores)."""
import os
import re

import pytest

from wirestamp.firmware.boards import build, toolchain_missing

pytestmark = pytest.mark.skipif(bool(toolchain_missing()), reason=toolchain_missing())

# board: (smallest plausible image in bytes, the clocks besides the core/control/receive three)
IMAGES = {
    "colorlight_5a75b": (400_000, {}),                      # uncompressed 25F: 464 KB
    "ecpix5": (1_500_000, {"ulpi_clk": 60.0}),              # uncompressed 85F: 2.2 MB
}


@pytest.mark.parametrize("board", sorted(IMAGES))
def test_image(board, tmp_path):
    """One test per board, so each image is built once however the suite is spread."""
    smallest, extra = IMAGES[board]
    bitstream, fmax, usage = build(board, out=str(tmp_path))
    assert os.path.getsize(bitstream) > smallest
    used, total = map(int, re.search(r"TRELLIS_COMB:\s+(\d+)/\s*(\d+)", usage).groups())
    assert used <= total
    expected = {"$glbnet$clk": 125.0, "$glbnet$ctl_clk": 62.5, "rx_clk": 125.0, **extra}
    for key, target in expected.items():
        found = [f for f in fmax if key == f.domain or (not key.startswith("$") and key in f.domain)]
        assert len(found) == 1, (key, fmax)
        assert found[0].target_mhz == target and found[0].met, found[0]
    assert len(fmax) == len(expected), fmax        # no clock unaccounted for
