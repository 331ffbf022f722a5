"""Hostile input against the whole surface, with hypothesis: `wirestamp run`'s flags, test
files, `sim://` and `serial://` options, the Python API and SCPI arguments. Each input ends as
one of:
- refused: one line (a ValueError, argparse's usage error, or a SCPI error in the queue),
  before the unit is touched;
- accepted: and an independent oracle, written here from the documented limits and not from
  wirestamp's code, agrees that it is valid;
- traceback: any other exception (must be 0);
- wrong: accepted though the oracle says it is invalid, or refused though valid (must be 0).

The run flags go to `cli.main` with a serial port that does not exist: an accepted command
reaches it and exits 3, a refused one exits 2 without reaching it.

    python benchmarks/input_fuzz.py [--examples N] [--seconds S]

prints the inputs tried and each outcome's count; tests/test_input_fuzz.py runs the same
checks with fewer examples and fails on any traceback or wrong value.
"""
import argparse
import contextlib
import io
import sys
import time
from collections import Counter
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOWHERE = "serial:///dev/ttyNOSUCH0"
CLOCK_HZ = 125_000_000          # byte times per second at 1 Gb/s (docs/transmit.md)
OVERHEAD = 20                   # preamble, SFD and inter-frame gap, bytes
LONGEST_S = ((1 << 48) - 1) * 16 / CLOCK_HZ     # a profile segment: 48-bit ticks of 16 cycles

outcomes = Counter()
examples = []                   # the inputs that ended as traceback or wrong, for the report


def _note(outcome, what):
    outcomes[outcome] += 1
    if outcome in ("traceback", "wrong") and len(examples) < 20:
        examples.append((outcome, what))
    return outcome


# --- wirestamp run's flags ------------------------------------------------------------------
UNICAST_IPS = ["10.0.0.2", "192.168.0.2", "172.16.5.4", "8.8.8.8"]
BAD_IPS = ["0.0.0.0", "255.255.255.255", "224.0.0.5", "239.1.1.1", "127.0.0.1", "240.0.0.1",
           "10.0.0.1/8", "garbage", "1.2.3", "256.1.1.1", ""]
UNICAST_MACS = ["02:77:73:00:00:01", "00:1b:21:aa:bb:cc", "02-00-00-00-00-09"]
BAD_MACS = ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01", "00:00:00:00:00:00",
            "02:00:00:00:00", "zz:00:00:00:00:01", "0200.0000.0001", ""]
NUMBERS = ["0", "1", "0.5", "64", "1000", "148809", "1488095", "1e3", "nan", "inf", "-5",
           "99999999999", "0.0000001", "12.5", "1488096"]


@st.composite
def run_flags(draw):
    """(argv, oracle's verdict): a constant-rate run with each flag drawn from the valid and
    the invalid, and whether the documented limits admit it."""
    # Each field valid more often than not, so that whole valid commands come up too.
    size = draw(st.sampled_from([64, 65, 512, 1518] * 3 + [-1, 0, 63, 1519, 70000]))
    number = draw(st.sampled_from(NUMBERS))
    unit = draw(st.sampled_from(["pps", "kpps", "mbps", "bps", "gbps", "", "xps"]))
    rate_text = draw(st.sampled_from([f"{number}{unit}", "line", "LINE", "fast"]))
    limit = draw(st.sampled_from(["count", "duration"] * 3 + ["none"]))
    count = draw(st.sampled_from([1, 400, (1 << 48) - 1] * 2 + [-1, 0, 1 << 48]))
    duration = draw(st.sampled_from(["1ms", "2.5s", "0s", "500d", "417d", "1h", "5", "x",
                                     "-1s", "nanms"]))
    src_ip = draw(st.sampled_from(UNICAST_IPS * 3 + BAD_IPS))
    src_mac = draw(st.sampled_from(UNICAST_MACS * 3 + BAD_MACS))
    dst_ip = draw(st.sampled_from(UNICAST_IPS * 2 + ["224.0.0.5", "garbage", "10.0.0.1/8"]))
    dst_port = draw(st.sampled_from([0, 5001, 65535] * 2 + [-1, 65536]))
    sample = draw(st.sampled_from([0, 1, 7, 2**32 - 1] * 2 + [-1, 2**32]))
    argv = ["run", "--device", NOWHERE, "--dst-ip", dst_ip, "--dst-mac", "02:00:00:00:00:09",
            "--frame-size", str(size), "--rate", rate_text, "--src-ip", src_ip,
            "--src-mac", src_mac, "--dst-port", str(dst_port), "--record-sample", str(sample)]
    if limit == "count":
        argv += ["--count", str(count)]
    elif limit == "duration":
        argv += ["--duration", duration]
    valid = (64 <= size <= 1518 and src_ip in UNICAST_IPS and src_mac in UNICAST_MACS
             and dst_ip in UNICAST_IPS + ["224.0.0.5"] and 0 <= dst_port <= 65535
             and 0 <= sample < 2**32 and _rate_ok(rate_text, size)
             and _limit_ok(limit, count, duration))
    return argv, valid


def _rate_ok(text, size):
    """The documented rates: line, or N[k|m|g]pps / N[k|m|g]bps, above 0, at most line rate."""
    if text.lower() == "line":
        return True
    for unit, scale in (("kpps", 1000), ("mbps", 10**6), ("gbps", 10**9), ("pps", 1),
                        ("bps", 1)):
        if text.endswith(unit):
            number = text[:-len(unit)]
            break
    else:
        return False
    if not number.replace(".", "", 1).isdigit():        # 1e3, nan, inf, -5: not documented
        return False
    value = Fraction(number) * scale
    pps = value / (8 * size) if unit.endswith("bps") else value
    return 0 < pps <= Fraction(CLOCK_HZ, size + OVERHEAD)


def _limit_ok(limit, count, duration):
    if limit == "none":
        return False                    # a constant rate needs a count or a duration
    if limit == "count":
        return 1 <= count <= (1 << 48) - 1
    seconds = {"1ms": 1e-3, "2.5s": 2.5, "500d": 500 * 86400, "417d": 417 * 86400,
               "1h": 3600}.get(duration)
    return seconds is not None and 0 < seconds <= LONGEST_S


def check_run(argv, valid):
    from wirestamp.cli import main
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
    except SystemExit as exit_:         # argparse: usage and one error line, status 2
        status = exit_.code
    except Exception as error:          # noqa: BLE001 (what the fuzz is for)
        return _note("traceback", (argv, repr(error)))
    text = err.getvalue()
    if "Traceback" in text:
        return _note("traceback", (argv, text))
    if status == 3:
        return _note("accepted" if valid else "wrong", (argv, "accepted"))
    if status == 2:
        one_line = text.count("\n") == 1 or text.startswith("usage:")
        if not one_line:
            return _note("wrong", (argv, f"not one line: {text!r}"))
        return _note("wrong" if valid else "refused", (argv, text.strip()))
    return _note("wrong", (argv, f"exit {status}: {text!r}"))


# --- test files -----------------------------------------------------------------------------
values = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=12),
                   st.booleans(), st.lists(st.integers(-10, 2000), max_size=10),
                   st.lists(st.text(max_size=3), max_size=3), st.dictionaries(
                       st.text(max_size=4), st.integers(), max_size=2))
STREAM_KEYS = ["dst_ip", "dst_port", "dst_mac", "src_ip", "src_port", "src_mac", "frame_size",
               "rate", "count", "duration", "ttl", "dscp", "bogus"]
test_files = st.fixed_dictionaries(
    {"streams": st.lists(st.dictionaries(st.sampled_from(STREAM_KEYS), values, max_size=8),
                         max_size=3)},
    optional={"unit": st.dictionaries(st.sampled_from(["ip", "mac", "x"]), values, max_size=2),
              "trials": values, "out": values, "record_sample": values, "settle": values})


def check_test_file(data):
    from wirestamp.streams import compile_streams, parse
    try:
        test = parse(data)
    except ValueError:
        return _note("refused", data)
    except Exception as error:          # noqa: BLE001
        return _note("traceback", (data, repr(error)))
    for stream in test.streams:         # the oracle: what was accepted is within the limits
        sizes = stream.frame_size if isinstance(stream.frame_size, list) else [stream.frame_size]
        if not all(isinstance(s, int) and 64 <= s <= 1518 for s in sizes) or \
                not 1 <= len(sizes) <= 8 or not 0 <= stream.dst_port <= 65535:
            return _note("wrong", (data, "a size or port out of range accepted"))
    compile_streams(test.streams)
    return _note("accepted", data)


# --- sim:// and serial:// options -----------------------------------------------------------
option_values = st.one_of(st.sampled_from(["", "0", "1", "-1", "0.5", "2", "nan", "inf", "1e9",
                                           "3us", "exp:20us", "uniform:2us-5us", "35s",
                                           "uniform:5us-2us", "exp:1ns", "300kpps", "0pps",
                                           "a/b", "/nonexistent/x"]),
                          st.text(max_size=10))


@st.composite
def sim_options(draw):
    name = draw(st.sampled_from(["delay", "loss", "dup", "reorder", "capacity", "queue",
                                 "link_loss", "link_corrupt", "timeout", "retries", "port",
                                 "cable", "link", "seed", "netns", "ip", "wire_pcap"]))
    return name, draw(option_values)


def check_sim_option(name, value):
    """The option's own parser, as `sim://` runs it before the board starts."""
    from wirestamp import device
    from wirestamp.sim import virtual
    try:
        if name == "delay":
            table, octave, longest = virtual.delay_model(value)
            if not all(64 <= t for t in table) or longest >= (1 << 32) * 8:
                return _note("wrong", (name, value))
        elif name in ("loss", "dup", "reorder", "link_loss", "link_corrupt"):
            p = virtual._probability(name, value)
            if not 0 <= p <= 1:
                return _note("wrong", (name, value))
        elif name in ("capacity", "queue"):
            virtual.capacity_model(value if name == "capacity" else "300kpps",
                                   value if name == "queue" else None)
        elif name in ("timeout", "retries"):
            options = {}
            device._link_options("sim://", {name: value}, options)
            if name == "timeout" and not 0 < options["timeout"] <= 3600:
                return _note("wrong", (name, value))
        elif name == "port":
            virtual._port(value)
        elif name == "cable":
            virtual._cable(value)
        elif name == "link":
            virtual._link(value)
        else:                           # seed, netns, ip, wire_pcap: checked in from_query
            _from_query_checks({name: value})
    except ValueError:
        return _note("refused", (name, value))
    except Exception as error:          # noqa: BLE001
        return _note("traceback", ((name, value), repr(error)))
    return _note("accepted", (name, value))


def _from_query_checks(query):
    """`from_query`'s checks without starting a board: the same function, with the board's
    start replaced by nothing."""
    from wirestamp.sim import virtual
    real = virtual.SimTransport
    virtual.SimTransport = lambda **kwargs: None
    try:
        virtual.from_query(query)
    finally:
        virtual.SimTransport = real


def check_serial_url(query):
    import wirestamp
    try:
        wirestamp.open(f"{NOWHERE}?{query}")
    except ValueError:
        return _note("refused", query)
    except wirestamp.LinkError:         # the options were taken; the port is not there
        return _note("accepted", query)
    except Exception as error:          # noqa: BLE001
        return _note("traceback", (query, repr(error)))
    return _note("wrong", (query, "opened a port that does not exist"))


# --- the Python API -------------------------------------------------------------------------
class Untouchable:
    """A transport that records whether anything reached the unit."""
    touched = False

    def write(self, data):
        Untouchable.touched = True
        raise OSError("touched")

    def read(self, timeout):
        Untouchable.touched = True
        raise OSError("touched")

    def close(self):
        pass


api_values = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.none(),
                       st.text(max_size=8), st.booleans())


@st.composite
def api_calls(draw):
    call = draw(st.sampled_from(["trim", "write_register", "set_address", "set_record_sample",
                                 "stream"]))
    return call, draw(api_values), draw(api_values)


def check_api(call, a, b):
    from wirestamp.device import Device
    from wirestamp.streams import Stream, compile_streams
    device = Device(Untouchable())
    Untouchable.touched = False
    integer = isinstance(a, int) and not isinstance(a, bool)
    valid = {"trim": (integer or isinstance(a, float)) and not isinstance(a, bool)
             and abs(a) <= 1000,
             "write_register": integer and 0 <= a < 2**32,
             "set_address": False,      # str() of these is never a unicast MAC and address
             "set_record_sample": integer and 0 <= a < 2**32}.get(call)
    try:
        if call == "trim":
            device.trim(a)
        elif call == "write_register":
            device.write_register("UNIT_IP", a)
        elif call == "set_address":
            device.set_address(str(a), str(b))
        elif call == "set_record_sample":
            device.set_record_sample(a)
        else:
            compile_streams([Stream("10.0.0.1", frame_size=a, rate=b, count=1)])
            return _note("accepted", (call, a, b)) if integer and 64 <= a <= 1518 \
                else _note("wrong", (call, a, b))
    except ValueError:
        if Untouchable.touched:
            return _note("wrong", ((call, a, b), "refused after touching the unit"))
        return _note("refused", (call, a, b))
    except OSError:                     # it went to the unit: it was accepted
        return _note("accepted" if valid else "wrong", (call, a, b))
    except Exception as error:          # noqa: BLE001
        return _note("traceback", ((call, a, b), repr(error)))
    return _note("wrong", ((call, a, b), "returned without touching the unit"))


# --- SCPI -----------------------------------------------------------------------------------
HEADERS = ["SOUR:STR1:RATE", "SOUR:STR1:COUN", "SOUR:STR1:DUR", "SOUR:STR1:SIZE",
           "SOUR:STR1:DEST:PORT", "SOUR:STR1:DEST:ADDR", "SOUR:STR1:DEST:MAC", "SOUR:ADDR",
           "SENS:REC:SAMP", "*ESE", "*SRE", "SOUR:STR1:PROF", "SOUR:STR1:STAT", "INIT",
           "SOUR:STR99:RATE", "FETC:STR1:STAT?", "BOGUS"]
scpi_args = st.one_of(st.sampled_from(NUMBERS + ["1e400", "-1e400", "'x'", '"10.0.0.1"',
                                                 "ON", "OFF", "64,128", "1,2,3,4,5,6,7,8,9"]),
                      st.text(max_size=12))


class IdleUnit:
    """A unit that answers as an idle one and accepts every write."""
    def __getattr__(self, name):
        from wirestamp import regmap
        from wirestamp.device import DeviceInfo
        info = DeviceInfo("1.2", regmap.CLOCK_HZ, 16, 64, 8)
        if name == "info":
            return info
        if name == "stream_stats":
            from wirestamp.device import StreamStats
            return lambda stream, ended=False: StreamStats(stream, 0, 0, 0, 0, 0, 0, None,
                                                           None, None, None)
        return lambda *a, **k: {"identify": info, "running": False,
                                "address": ("02:77:73:00:00:01", "192.168.0.2")}.get(name)


def check_scpi(header, argument):
    from wirestamp.scpi import Session, Shared
    session = Session(Shared(IdleUnit()))
    line = f"{header} {argument}".encode("utf-8", "replace")
    try:
        session.execute(line)
    except Exception as error:          # noqa: BLE001
        return _note("traceback", (line, repr(error)))
    if any(entry.startswith("-240,") for entry in session.errors):   # an exception leaked
        return _note("traceback", (line, session.errors))
    return _note("refused" if session.errors else "accepted", line)


# --- running them ---------------------------------------------------------------------------
def fuzz(examples_each, deadline=None):
    """Every surface, `examples_each` inputs each (hypothesis, derandomized)."""
    common = dict(max_examples=examples_each, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))

    @settings(**common)
    @given(run_flags())
    def run(case):
        check_run(*case)

    @settings(**common)
    @given(test_files)
    def files(data):
        check_test_file(data)

    @settings(**common)
    @given(sim_options())
    def sim(option):
        check_sim_option(*option)

    @settings(**common)
    @given(st.dictionaries(st.sampled_from(["baud", "timeout", "retries", "port", "x"]),
                           option_values, max_size=3).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items())))
    def serial(query):
        check_serial_url(query)

    @settings(**common)
    @given(api_calls())
    def api(case):
        check_api(*case)

    @settings(**common)
    @given(st.sampled_from(HEADERS), scpi_args)
    def scpi(header, argument):
        check_scpi(header, argument)

    for surface in (run, files, sim, serial, api, scpi):
        if deadline is not None and time.monotonic() > deadline:
            print(f"time limit reached before {surface.__name__}")
            break
        surface()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs per surface")
    parser.add_argument("--seconds", type=float, default=600, help="time limit")
    args = parser.parse_args()
    began = time.monotonic()
    fuzz(args.examples, began + args.seconds)
    tried = sum(outcomes.values())
    print(f"{tried} inputs in {time.monotonic() - began:.0f} s: {outcomes['refused']} refused "
          f"in one line, {outcomes['accepted']} accepted (the oracle agrees), "
          f"{outcomes['traceback']} tracebacks, {outcomes['wrong']} wrong values accepted or "
          f"valid ones refused")
    for outcome, what in examples:
        print(f"  {outcome}: {what}")
    return 1 if outcomes["traceback"] or outcomes["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
