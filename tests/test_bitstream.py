"""The Colorlight 5A-75B image (LFE5U-25F speed 6, the slowest target) builds with the
pip-installed YoWASP tools, fits, and each clock's Fmax after routing is checked against the
frequency it runs at (125 MHz; the control clock 62.5 MHz). Takes 8 to 13 minutes; it runs
beside the rest of the suite."""
import os
import re

import pytest

from wirestamp.firmware.boards import build, toolchain_environment


def _tools_missing():
    try:
        toolchain_environment()
    except RuntimeError as error:
        return str(error)
    return ""


pytestmark = pytest.mark.skipif(bool(_tools_missing()), reason=_tools_missing())


def test_colorlight_image(tmp_path):
    """One test, so the image is built once however the suite is spread over workers."""
    bitstream, fmax, usage = build("colorlight_5a75b", out=str(tmp_path))    # router1
    fmax = {f.domain: f for f in fmax}
    assert os.path.getsize(bitstream) > 400_000         # an uncompressed 25F image: 464 KB
    used, total = map(int, re.search(r"TRELLIS_COMB:\s+(\d+)/\s*(\d+)", usage).groups())
    assert used <= total
    rx = [f for name, f in fmax.items() if "rx_clk" in name]
    assert len(rx) == 1 and rx[0].target_mhz == 125 and rx[0].met, rx
    control = fmax["$glbnet$ctl_clk"]
    assert control.target_mhz == 62.5 and control.met, control
    core = fmax["$glbnet$clk"]
    assert core.target_mhz == 125 and core.met, core
