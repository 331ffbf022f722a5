"""Tests in files (`wirestamp run --config test.toml`, `wirestamp.streams.load`): the schema is
`Stream`'s own field names; unknown keys and bad values are refused with the key's path before
the device is touched; a file with two streams (one IMIX) and trials runs on the virtual board
and every packet of each stream is measured."""
import json
import subprocess
import sys

import pytest

from wirestamp.cli import main
from wirestamp.rates import UpDown
from wirestamp.streams import load

PAPER = """
# The paper's test: one UDP stream at 10 kpps to a host that reflects it.
out = "{out}"
trials = 2

[unit]
ip = "10.0.0.2"

[[streams]]
dst_ip = "10.0.0.9"
dst_mac = "02:00:00:00:00:09"
dst_port = 5001
frame_size = 64
rate = "100kpps"
count = 200

[[streams]]                       # an IMIX, 4:3:1 (the unit cycles up to 8 sizes)
dst_ip = "10.0.0.9"
frame_size = [64, 594, 64, 594, 64, 1518, 64, 594]
rate = "200mbps"
duration = "2ms"
"""


def write(tmp_path, text):
    path = tmp_path / "test.toml"
    path.write_text(text)
    return path


def test_a_file_loads_as_streams(tmp_path):
    test = load(write(tmp_path, PAPER.format(out=tmp_path / "out")))
    assert test.trials == 2 and test.unit_ip == "10.0.0.2" and len(test.streams) == 2
    first, imix = test.streams
    assert (first.dst_ip, first.count, first.src_ip) == ("10.0.0.9", 200, "10.0.0.2")
    assert imix.duration == pytest.approx(0.002) and len(imix.sizes) == 8
    assert test.resolve == (1,)                 # no dst_mac: asked by ARP
    profile = load(write(tmp_path, '[[streams]]\ndst_ip = "10.0.0.1"\n'
                                   'rate = "updown:9000pps/60s"\n'))
    assert isinstance(profile.streams[0].rate, UpDown)


@pytest.mark.parametrize("text, message", [
    ('[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\nrate = "fast"\n', "streams[0].rate: 'fast'"),
    ('[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\n[[streams]]\ndst_ip = "10.0.0.1"\n'
     'count = 5\nspeed = 3\n', "streams[1].speed: unknown key"),
    ('[[streams]]\ndst_ip = "10.0.0.1"\n', "streams[0].count"),
    ('[[streams]]\ncount = 5\n', "streams[0].dst_ip: missing"),
    ('[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\nframe_size = 2000\n',
     "streams[0].frame_size"),
    ('[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\ndst_mac = "02:0_:00:00:00:01"\n',
     "streams[0].dst_mac"),
    ('trials = 0\n[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\n', "trials"),
    ('[unit]\nip = "10.0.0"\n[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\n', "unit.ip"),
    ('[unit]\nnetmask = 24\n', "unit.netmask: unknown key"),
    ('colour = "red"\n', "colour: unknown key"),
    ('trials = 1\n', "streams: give at least one"),
    ('[[streams]]\ndst_ip = "10.0.0.1"\nrate = "line"\ncount = 5\n[[streams]]\n'
     'dst_ip = "10.0.0.1"\nrate = "line"\ncount = 5\n', "streams: rate: the streams together"),
    ('[[streams]\n', "not valid TOML"),
])
def test_bad_files_are_one_line_naming_the_key(tmp_path, capsys, text, message):
    # Opening this port would fail with exit 3: the device must never be reached.
    assert main(["run", "--device", "serial:///dev/ttyNOSUCH0", "--config",
                 str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_config_and_stream_flags_together_are_refused(tmp_path, capsys):
    path = write(tmp_path, '[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\n')
    assert main(["run", "--device", "sim://", "--config", str(path), "--dst-ip", "10.0.0.1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["run", "--device", "sim://", "--config", str(tmp_path / "none.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_two_streams_and_two_trials_on_the_virtual_board(tmp_path):
    out = tmp_path / "out"
    path = write(tmp_path, PAPER.format(out=out))
    result = subprocess.run([sys.executable, "-m", "wirestamp.cli", "run", "--device",
                             "sim://?dut=echo&delay=3us", "--config", str(path), "--quiet"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for trial in (1, 2):
        summary = json.loads((out / f"trial-{trial}" / "summary.json").read_text())
        first, imix = summary["streams"]
        assert first["tx_packets"] == first["rx_packets"] == 200 and first["lost"] == 0
        # 200 Mb/s of IMIX frames for 2 ms: 200e6 × 2e-3 / (8 × 444.5 bytes) = 112.5 packets
        assert 110 <= imix["tx_packets"] <= 115 and imix["rx_packets"] == imix["tx_packets"]
        assert summary["config"]["trial"] == trial and summary["config"]["resolved"] == {
            "10.0.0.9": "02:00:00:00:00:09"}            # the echo model answered ARP
        assert summary["records"]["lost"] == 0
