"""The Colorlight 5A-75B image (LFE5U-25F speed 6, the slowest target) builds with the
pip-installed YoWASP tools, fits, and each clock's Fmax after routing is checked against the
125 MHz it runs at. Takes about 8 minutes; it runs beside the rest of the suite."""
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


# One build for the module: its tests stay on one xdist worker (make test runs --dist loadgroup).
pytestmark = [pytest.mark.skipif(bool(_tools_missing()), reason=_tools_missing()),
              pytest.mark.xdist_group("bitstream")]


@pytest.fixture(scope="module")
def colorlight(tmp_path_factory):
    bitstream, fmax, usage = build("colorlight_5a75b", out=str(tmp_path_factory.mktemp("boards")))
    return bitstream, {f.domain: f for f in fmax}, usage


def test_image_fits_and_is_written(colorlight):
    bitstream, _, usage = colorlight
    assert os.path.getsize(bitstream) > 400_000         # an uncompressed 25F image: 464 KB
    used, total = map(int, re.search(r"TRELLIS_COMB:\s+(\d+)/\s*(\d+)", usage).groups())
    assert used <= total


def test_phy_receive_clock_meets_125_mhz(colorlight):
    _, fmax, _ = colorlight
    rx = [f for name, f in fmax.items() if "rx_clk" in name]
    assert len(rx) == 1 and rx[0].target_mhz == 125 and rx[0].met, rx


@pytest.mark.xfail(strict=True, reason="issue 6: the core clock reaches 52-70 MHz on the 25F "
                                       "so far; the core needs more pipelining")
def test_core_clock_meets_125_mhz(colorlight):
    _, fmax, _ = colorlight
    core = fmax["$glbnet$clk"]
    assert core.target_mhz == 125 and core.met, core
