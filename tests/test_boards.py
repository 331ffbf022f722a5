"""Board top levels (firmware/boards.py): each elaborates on its amaranth-boards platform into
the build files, with the PLL, the RGMII DDR registers and the clock constraints; the build's
timing report is read per clock; flashing says how to get openFPGALoader when it is missing."""
import re

import pytest

from wirestamp.firmware.boards import (BOARDS, Top, flash, nextpnr_options, parse_fmax,
                                       platform_for)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_top_level_elaborates(board):
    plan = platform_for(board).prepare(Top(board), name="wirestamp")
    rtlil, constraints = plan.files["wirestamp.il"], plan.files["wirestamp.lpf"]
    assert rtlil.count("cell \\EHXPLLL") == 1
    assert len(re.findall(r"cell \\ODDRX1F", rtlil)) == 6     # 4 data, ctl, clock
    assert len(re.findall(r"cell \\IDDRX1F", rtlil)) == 5     # 4 data, ctl
    # Receive data delayed in the FPGA where the board's PHY does not delay its clock.
    delays = re.findall(r"cell \\DELAYG.*?parameter \\DEL_VALUE (\d+)", rtlil, re.S)
    assert delays == ([str(round(BOARDS[board].rx_delay_ns / 0.025))] * 5
                      if BOARDS[board].rx_delay_ns else [])
    frequencies = re.findall(r"FREQUENCY (?:PORT|NET) \S+ ([\d.]+) HZ", constraints)
    assert "125000000.0" in frequencies                       # the PHY's receive clock
    assert f"{BOARDS[board].clock_mhz * 1e6}" in frequencies  # the oscillator
    # Both reference outputs on every board, on the pins docs/boards.md gives.
    pins = dict(re.findall(r'LOCATE COMP "reference_0__(\w+)__io" SITE "(\w+)"', constraints))
    assert pins == {"colorlight_5a75b": {"pps": "F3", "square": "F1"},
                    "versa_ecp5": {"pps": "A8", "square": "A12"},
                    "ecpix5": {"pps": "T25", "square": "U25"}}[board]


@pytest.mark.parametrize("board", ["colorlight_5a75b", "versa_ecp5"])      # two RGMII ports
def test_one_port_transmits_and_the_other_receives(board):
    plan = platform_for(board).prepare(Top(board, port=0, rx_port=1), name="wirestamp")
    rtlil, constraints = plan.files["wirestamp.il"], plan.files["wirestamp.lpf"]
    assert len(re.findall(r"cell \\ODDRX1F", rtlil)) == 12    # both ports drive their TX pins
    assert len(re.findall(r"cell \\IDDRX1F", rtlil)) == 5     # only port 1 receives
    clocks = re.findall(r"FREQUENCY (?:PORT|NET) \S*(rgmii_\d)__rx_clk\S* ([\d.]+) HZ",
                        constraints)
    assert clocks == [("rgmii_1", "125000000.0")]
    # Port 0's transmit clock and port 1's receive pins are both placed.
    assert re.search(r"LOCATE COMP \"rgmii_0__tx_clk__io\"", constraints)
    assert re.search(r"LOCATE COMP \"rgmii_1__rx_data__io\[0\]\"", constraints)


def test_build_script_places_with_the_seed_asked_for():
    plan = platform_for("colorlight_5a75b").prepare(Top("colorlight_5a75b"), name="wirestamp",
                                                    nextpnr_opts=nextpnr_options(7, "router2"))
    script = plan.files["build_wirestamp.sh"]
    assert re.search(r"NEXTPNR_ECP5.* --timing-allow-fail --router router2 .*--seed 7 ", script)
    assert "--report wirestamp.report.json --detailed-timing-report" in script
    assert "--router router1" in nextpnr_options()
    assert "--seed" not in nextpnr_options()


def test_fmax_is_read_per_clock_after_routing():
    log = """
Info: Max frequency for clock '$glbnet$clk': 80.12 MHz (FAIL at 125.00 MHz)
Info: Max frequency for clock '$glbnet$rx_clk': 150.00 MHz (PASS at 125.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 131.50 MHz (PASS at 125.00 MHz)
"""
    fmax = {f.domain: f for f in parse_fmax(log)}
    assert fmax["$glbnet$clk"].mhz == 131.5 and fmax["$glbnet$clk"].met
    assert fmax["$glbnet$rx_clk"].target_mhz == 125.0


def test_flash_without_openfpgaloader_says_how_to_install(monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", "/nonexistent/openFPGALoader")
    with pytest.raises(RuntimeError, match="apt-get install openfpgaloader"):
        flash("colorlight_5a75b", "wirestamp.bit")


@pytest.mark.parametrize("board, asked, expected", [
    ("colorlight_5a75b", None, "router1"), ("versa_ecp5", None, "router2"),
    ("versa_ecp5", "router1", "router1")])
def test_build_routes_with_the_boards_router_unless_told(board, asked, expected, monkeypatch,
                                                         tmp_path):
    import wirestamp.firmware.boards as boards

    class Stop(Exception):
        pass

    def stop_at_build(self, top, *args, nextpnr_opts, **kwargs):
        top._MustUse__silence = True        # not elaborated here, on purpose
        raise Stop(nextpnr_opts)

    monkeypatch.setattr(boards, "toolchain_environment", dict)
    monkeypatch.setattr(type(platform_for(board)), "build", stop_at_build)
    with pytest.raises(Stop) as stopped:
        boards.build(board, out=str(tmp_path), router=asked)
    assert f"--router {expected} " in str(stopped.value)


def test_the_ecpix5_top_has_the_usb_device_and_the_uart():
    plan = platform_for("ecpix5").prepare(Top("ecpix5"), name="wirestamp")
    rtlil, constraints = plan.files["wirestamp.il"], plan.files["wirestamp.lpf"]
    clocks = dict(re.findall(r"FREQUENCY (?:PORT|NET) \S*?(ulpi_0__clk|clk100|rgmii_0__rx_clk)"
                             r"\S* ([\d.]+) HZ", constraints))
    assert clocks == {"ulpi_0__clk": "60000000.0", "clk100": "100000000.0",
                      "rgmii_0__rx_clk": "125000000.0"}
    assert "usb_bridge" in rtlil and "arbiter" in rtlil and "uart" in rtlil
    for pin in ("ulpi_0__stp", "ulpi_0__data", "uart_0__tx"):
        assert pin in constraints, pin


def test_the_cli_offers_every_board():
    from wirestamp.cli import BOARDS as offered
    assert sorted(offered) == sorted(BOARDS)
