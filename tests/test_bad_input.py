"""Bad input is one clear line and a non-zero exit before the unit is touched: never a
traceback, never a wrong value accepted (issue 32's list, each one). The device in the CLI
cases is a serial port that does not exist: reaching it would be exit 3, not 2."""
import math

import pytest

import wirestamp
from wirestamp.cli import main
from wirestamp.device import Device
from wirestamp.streams import parse

NOWHERE = "serial:///dev/ttyNOSUCH0"
RUN = ["run", "--device", NOWHERE, "--dst-ip", "10.0.0.1"]


@pytest.mark.parametrize("args, said", [
    ([*RUN, "--duration", "500d"], "longer than the unit times a segment"),
    ([*RUN, "--rate", "updown:100kpps/1ns"], "shorter than one tick"),
    ([*RUN, "--count", "5", "--record-sample", "4294967296"], "--record-sample"),
    ([*RUN, "--rate", "ramp:0-0pps/1ms"], "0 pps never sends"),
    ([*RUN, "--count", "5", "--src-ip", "224.0.0.5"], "src_ip: 224.0.0.5"),
    ([*RUN, "--count", "5", "--src-ip", "0.0.0.0"], "src_ip: 0.0.0.0"),
    ([*RUN, "--count", "5", "--src-ip", "255.255.255.255"], "src_ip: 255.255.255.255"),
    ([*RUN, "--count", "5", "--src-ip", "127.0.0.1"], "src_ip: 127.0.0.1"),
    ([*RUN, "--count", "5", "--src-mac", "ff:ff:ff:ff:ff:ff"], "group address"),
    ([*RUN, "--count", "5", "--src-mac", "01:00:5e:00:00:05"], "group address"),
    ([*RUN, "--count", "5", "--src-mac", "00:00:00:00:00:00"], "null address"),
    (["info", "--device", "sim://?timeout=inf"], "timeout=inf"),
    (["info", "--device", "sim://?timeout=nan"], "timeout=nan"),
    (["info", "--device", "sim://?retries=-5"], "retries=-5"),
    (["info", "--device", "sim://?wire_pcap=/nonexistent-folder/w.pcapng"], "does not exist"),
    (["info", "--device", "sim://?truth=/nonexistent-folder/t.txt"], "does not exist"),
    (["info", "--device", "sim://?dut=linux&ip=10.77.0.1/8"], "ip: '10.77.0.1/8'"),
    (["info", "--device", "sim://?dut=linux&ip=garbage"], "ip: 'garbage'"),
    (["info", "--device", "sim://?dut=linux&netns=a/b"], "netns=a/b"),
    (["info", "--device", "sim://?dut=echo&delay=35s"], "below 34.36 s"),
    (["info", "--device", "sim://?seed=x"], "seed=x"),
    (["info", "--device", "serial:///dev/ttyS0?baud=abc"], "baud=abc"),
    (["info", "--device", "serial:///dev/ttyS0?bud=3000000"], "unknown option(s) bud"),
    (["info", "--device", "usb://?speed=fast"], "unknown option(s) speed"),
    (["flash", "--board", "ecpix5", "--bitstream", "/nonexistent.bit"], "no such file"),
    (["demo", "--out", "/proc/version/x"], "cannot write in"),
    (["run", "--device", NOWHERE, "--config", "/dev/zero"], "is not a file"),
])
def test_bad_input_is_one_line_before_the_unit(args, said, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "Traceback" not in err, err


@pytest.mark.parametrize("toml, said", [
    ('frame_size = ["a"]', "frame_size: 'a'"),
    ("frame_size = [[64]]", "frame_size: [64]"),
    ("frame_size = []", "frame_size: a list of 1..8"),
    ('src_ip = "224.0.0.1"', "src_ip"),
])
def test_bad_test_file_values_name_their_key(tmp_path, toml, said, capsys):
    path = tmp_path / "t.toml"
    path.write_text(f'[[streams]]\ndst_ip = "10.0.0.1"\ncount = 5\n{toml}\n')
    assert main(["run", "--device", NOWHERE, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "streams[0]." in err and said in err, err


def test_the_unit_address_in_a_test_file_must_be_unicast():
    with pytest.raises(ValueError, match="unit.mac: 01:00:5e"):
        parse({"unit": {"mac": "01:00:5e:00:00:01"}, "streams": [{"dst_ip": "10.0.0.1"}]})
    with pytest.raises(ValueError, match="unit.ip: 0.0.0.0"):
        parse({"unit": {"ip": "0.0.0.0"}, "streams": [{"dst_ip": "10.0.0.1"}]})


class Untouchable:
    """A transport that fails the test if anything is sent: checks come first."""
    def write(self, data):
        raise AssertionError(f"the unit was touched: {data!r}")

    def read(self, timeout):
        raise AssertionError("the unit was read")

    def close(self):
        pass


@pytest.mark.parametrize("call, said", [
    (lambda d: d.trim(math.inf), "trim: inf"),
    (lambda d: d.trim(math.nan), "trim: nan"),
    (lambda d: d.trim(-1e6), "trim: -1000000.0"),
    (lambda d: d.write_register("UNIT_IP", -1), "UNIT_IP: -1"),
    (lambda d: d.write_register("UNIT_IP", 1 << 32), "UNIT_IP"),
    (lambda d: d.write_register("UNIT_IP", 1.5), "UNIT_IP: 1.5"),
    (lambda d: d.set_address("ff:ff:ff:ff:ff:ff", "10.0.0.2"), "mac: ff:ff"),
    (lambda d: d.set_address("02:00:00:00:00:01", "255.255.255.255"), "ip: 255.255.255.255"),
])
def test_api_refuses_before_the_unit(call, said):
    device = Device(Untouchable())
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(".", r"\.")):
        call(device)


def test_a_damaged_link_is_said_to_be_damaged():
    # Nearly every frame garbled both ways: the unit answers, but nothing arrives whole.
    with wirestamp.open("sim://?link_corrupt=0.95&seed=3&timeout=0.2&retries=3") as device:
        with pytest.raises(wirestamp.LinkError, match="the link is damaged, not silent"):
            for _ in range(20):
                device.identify()


@pytest.mark.parametrize("counter", ["TCPIP::127.0.0.1::INSTR", "ASRL/dev/ttyS99::INSTR"])
def test_a_counter_that_cannot_be_opened_is_one_line_before_the_unit(counter, capsys):
    assert main(["calibrate", "--device", NOWHERE, "--counter", counter,
                 "--visa-library", "@py"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open it" in err and "Traceback" not in err, err


def test_records_that_reach_the_host_are_kept_while_a_request_waits():
    """Issue 33: RECORDS frames that came while a request waited for its reply were held in
    64 slots, the oldest dropped. Now every one is kept up to a bound in bytes, and what a
    smaller bound drops is counted as the host's own."""
    from wirestamp.protocol import RECORD_BYTES, RECORD_TAG, Frame, Op, encode

    class Chatty(Untouchable):
        """A unit that sends 200 RECORDS frames before each reply."""
        def __init__(self):
            self.pending = b""

        def write(self, data):
            from wirestamp.protocol import decode
            request = decode(data[:-1])
            self.pending = b"".join(encode(Frame(RECORD_TAG, Op.RECORDS,
                                                 bytes(RECORD_BYTES))) for _ in range(200))
            self.pending += encode(Frame(request.tag, Op.READ_REPLY,
                                         (0x57535450).to_bytes(4, "little") * request.body[2]))

        def read(self, timeout):
            data, self.pending = self.pending, b""
            return data

    device = Device(Chatty())
    device._link.checked = device._released = True      # straight to the reads
    for _ in range(3):
        device.read(0, 1)
    assert len(device._records) == 600 and device.records_dropped == 0
    small = Device(Chatty(), held_records=100 * RECORD_BYTES)
    small._link.checked = small._released = True
    small.read(0, 1)
    assert len(small._records) == 100 and small.records_dropped == 100
