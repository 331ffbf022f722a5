"""The `wirestamp` command."""
import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path

from . import regmap

__all__ = ["main"]

DEVICE_HELP = ("serial:///dev/ttyUSB1?baud=3000000, usb:// (ECPIX-5), or the virtual board "
               "sim://?dut=echo&delay=3us")

# firmware.boards.BOARDS' names (that module needs amaranth; a test keeps the two equal).
BOARDS = ["colorlight_5a75b", "versa_ecp5", "ecpix5"]

# Exit statuses (README, "Commands"): 0 all measured, 1 something not measured, 2 bad input,
# 3 the unit does not answer, 4 the disk is full, 128 + N after signal N (130 Ctrl-C, 143 TERM).
EXIT_NO_ANSWER = 3
EXIT_DISK_FULL = 4


def cmd_regs(args):
    text = regmap.markdown()
    if args.check:
        current = Path(args.check).read_text() if Path(args.check).exists() else ""
        if current != text:
            print(f"{args.check} is out of date: run `wirestamp regs > {args.check}`",
                  file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


def _missing_extra(command, what, extra, error):
    """Says which pip extra a command needs; the exit status for it."""
    print(f"wirestamp {command} needs the {what} extras ({error.name} is missing): "
          f"pip install 'wirestamp[{extra}]'", file=sys.stderr)
    return 2


def cmd_demo(args):
    try:
        from .sim.demo import run_demo
    except ImportError as error:
        return _missing_extra("demo", "simulation", "sim", error)
    from .files import claim
    claim(args.out, overwrite=True)     # a writable folder, one demo at a time; it rewrites its own
    run_demo(dut=args.dut, peak=args.peak, seconds=args.seconds, trials=args.trials,
             out=Path(args.out), progress=not args.quiet, link=args.link)
    return 0


def cmd_build(args):
    try:
        from .firmware.boards import build
    except ImportError as error:
        return _missing_extra("build", "gateware", "build", error)
    import time
    began = time.monotonic()
    bitstream, fmax, usage = build(args.board, out=args.out, port=args.port, seed=args.seed,
                                   router=args.router, rx_port=args.rx_port)
    print(f"{bitstream} built in {time.monotonic() - began:.0f} s\n{usage}")
    for clock in fmax:
        print(f"{clock.domain}: {clock.mhz:.1f} MHz (needs {clock.target_mhz:.1f}) "
              f"{'ok' if clock.met else 'MISSED'}")
    return 0 if fmax and all(clock.met for clock in fmax) else 1


def cmd_flash(args):
    bitstream = args.bitstream or f"{args.out}/{args.board}/wirestamp.bit"
    if not Path(bitstream).is_file():
        raise ValueError(f"--bitstream {bitstream}: no such file; build it first (wirestamp "
                         f"build --board {args.board})")
    from .firmware.boards import flash
    return flash(args.board, bitstream, to_flash=args.flash)


def cmd_info(args):
    import wirestamp
    with wirestamp.open(args.device) as dev:
        info = dev.identify()
        mac, ip = dev.address()
        counters = dev.counters()
        phys = [phy.as_dict() for phy in dev.phys()]
        print(json.dumps({"device": args.device, **info.__dict__, "mac": mac, "ip": ip,
                          "link": phys or "no PHY answers on MDIO (docs/bring-up.md)",
                          "counters": counters}, indent=2))
    return 0


def _run_folder(out, overwrite, kind="run"):
    """The folder a run writes, claimed (`files.claim`: a writable folder, locked while this
    process writes it, refused if it holds any run's files unless `overwrite`) before the unit
    is touched: `out` as given, or by default a new one per run under out/, named by the time
    it began. Returns the `files.Claim`."""
    from .files import claim
    if out is not None:
        return claim(out, overwrite)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = Path("out") / f"{kind}-{stamp}", 1
    while folder.exists():
        n += 1
        folder = Path("out") / f"{kind}-{stamp}-{n}"
    return claim(folder)


def _print_run(summary, folder):
    for entry in summary["streams"]:
        lat = entry["latency_ns"]
        line = (f"stream {entry['id']}: tx {entry['tx_packets']}  rx {entry['rx_packets']}  "
                f"lost {entry['lost']}  reordered {entry['reordered']}  "
                f"duplicates {entry['duplicates']}")
        if lat["min"] is not None:
            p = [lat[k] for k in ("p50", "p90", "p99", "p999")]
            line += (f"  latency ns min {lat['min']} mean {lat['mean']:.1f} max {lat['max']}"
                     f" stddev {lat['stddev']:.1f}")
            if p[0] is not None:
                line += f" p50 {p[0]} p90 {p[1]} p99 {p[2]} p99.9 {p[3]}"
            jitter = entry["jitter_ns"]
            if jitter["rfc3550"] is not None:
                line += (f"  jitter {jitter['rfc3550']:.1f} ns, IPDV {jitter['ipdv_min']}.."
                         f"{jitter['ipdv_max']} mean |{jitter['ipdv_mean_abs']:.1f}|")
        print(line)
    r = summary["records"]
    print(f"records: expected {r['expected']}, received {r['received']}, lost {r['lost']} "
          f"(FIFO overflow {r['fifo_overflow']}); one in {r['sample_one_in']} kept")
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if summary.get("notice"):
        print(f"note: {summary['notice']}", file=sys.stderr)
    state = "interrupted; " if summary["interrupted"] else ""
    print(f"{state}wrote {folder / 'summary.json'} and {folder / 'records.parquet'}/")


def _test_from_flags(args):
    """The single stream of `wirestamp run`'s flags, as a TestFile."""
    from .rates import Profile
    from .streams import Stream, TestFile, compile_streams
    from .units import parse_duration, parse_rate
    if not regmap.MIN_FRAME <= args.frame_size <= regmap.MAX_FRAME:     # before bps / size
        raise ValueError(f"--frame-size: {args.frame_size}; {regmap.MIN_FRAME}.."
                         f"{regmap.MAX_FRAME} bytes with FCS")
    rate = parse_rate(args.rate, args.frame_size)
    duration = float(parse_duration(args.duration)) if args.duration else None
    if args.count is not None and args.count < 1:
        raise ValueError(f"--count: {args.count} packets; give at least 1")
    if not isinstance(rate, Profile) and args.count is None and duration is None:
        raise ValueError(f"--rate {args.rate}: a constant rate runs until stopped; "
                         f"give --count or --duration (a profile carries its own length)")
    stream = Stream(args.dst_ip, dst_port=args.dst_port, frame_size=args.frame_size,
                    rate=rate, count=args.count or 0, duration=duration,
                    dst_mac=args.dst_mac or "ff:ff:ff:ff:ff:ff", src_ip=args.src_ip,
                    src_mac=args.src_mac)
    compile_streams([stream])   # refuse bad input before the device is touched
    if not 0 <= args.record_sample < 2**32:
        raise ValueError(f"--record-sample: {args.record_sample}; 0 (none), 1 (every "
                         f"packet) or N (one in N, below 2^32)")
    settle = float(parse_duration(args.settle)) if args.settle else None
    return TestFile([stream], unit_ip=args.src_ip, unit_mac=args.src_mac, out=args.out,
                    record_sample=args.record_sample, settle=settle,
                    resolve=() if args.dst_mac else (0,))


def cmd_run(args):
    from .streams import load
    flags = [f for f in ("dst_ip", "dst_mac", "count", "duration") if getattr(args, f)]
    if args.config:
        if flags:
            raise ValueError(f"--config: give the streams in the file or as flags, not both "
                             f"(--{flags[0].replace('_', '-')} given)")
        test = load(args.config)
        test.out = args.out or test.out
        if args.settle:
            from .units import parse_duration
            test.settle = float(parse_duration(args.settle))
    elif not args.dst_ip:
        raise ValueError("--dst-ip: give the DUT's address, or a test file with --config")
    else:
        test = _test_from_flags(args)
    _warn_long_virtual_run(args.device, test.streams)
    with _run_folder(test.out, args.overwrite) as claimed:
        return _run_trials(args, test, claimed.folder)


# The virtual board's pace: about 0.5 M of its cycles per second of wall time on this project's
# 2-core machines (docs/virtual.md), so a second of the unit's time takes minutes.
VIRTUAL_CYCLES_PER_S = 500_000


def _warn_long_virtual_run(device, streams):
    """On the virtual board, say how long the run's unit time will take in wall time when
    that is more than ten minutes (the rate and count may say weeks)."""
    if not device.startswith("sim://"):
        return
    seconds = 0.0
    for stream in streams:
        profile = stream.profile
        length = float(profile.seconds) if profile.seconds is not None else float("inf")
        if stream.count and profile.peak:       # at least count / peak
            length = min(length, stream.count / float(profile.peak))
        seconds = max(seconds, length)
    wall = seconds * regmap.CLOCK_HZ / VIRTUAL_CYCLES_PER_S
    if wall > 600:
        print(f"wirestamp: warning: this run lasts {_span(seconds)} of the unit's time; the "
              f"virtual board simulates about {VIRTUAL_CYCLES_PER_S / regmap.CLOCK_HZ * 1e3:.0f}"
              f" ms of it per second, so about {_span(wall)} here (Ctrl-C stops it and keeps "
              f"what was measured)", file=sys.stderr)


def _span(seconds):
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.3g} s"


def _run_trials(args, test, folder):
    import wirestamp
    from .device import LinkError
    from .files import DiskFull
    from .run import run_measurement
    from .signals import Interrupted
    folders = [folder] if test.trials == 1 else \
        [folder / f"trial-{n + 1}" for n in range(test.trials)]
    settings = {"device": args.device, "command_line": sys.argv,
                **({"config": str(args.config)} if args.config else {})}
    status = 0
    with wirestamp.open(args.device) as dev:
        dev.set_address(test.unit_mac, test.unit_ip)
        resolved = {}
        for row in test.resolve:            # as TRex does: ARP, unless the MAC is given
            stream = test.streams[row]
            if stream.dst_ip not in resolved:
                resolved[stream.dst_ip] = dev.resolve(stream.dst_ip)
            stream.dst_mac = resolved[stream.dst_ip]
        if resolved:
            settings["resolved"] = resolved
        for n, out in enumerate(folders):
            try:
                summary = run_measurement(dev, test.streams, out, progress=not args.quiet,
                                          settle=test.settle, record_sample=test.record_sample,
                                          settings={**settings, "trial": n + 1,
                                                    "trials": test.trials})
            except (Interrupted, LinkError, DiskFull) as error:
                summary = getattr(error, "summary", None)
                if summary is None:         # before the unit was started: nothing measured
                    raise
                if summary["streams"] is not None:
                    _print_run(summary, out)
                elif summary["missing"]:
                    print(f"wirestamp: not measured: {', '.join(summary['missing'])}",
                          file=sys.stderr)
                stop = summary["stop"]["how"]
                if summary.get("unwritten"):    # nothing measured is lost: it goes to stdout
                    print(f"wirestamp: {summary['unwritten']} could not be written (no space); "
                          f"the summary follows on standard output", file=sys.stderr)
                    print(json.dumps(summary, indent=2))
                if isinstance(error, Interrupted):
                    print(f"wirestamp: interrupted ({stop}); what was measured is in {out}",
                          file=sys.stderr)
                    return 128 + error.signum
                print(f"wirestamp: {error}\nthe streams: {stop}; what was measured is in "
                      f"{out}", file=sys.stderr)
                return EXIT_DISK_FULL if isinstance(error, DiskFull) else EXIT_NO_ANSWER
            if test.trials > 1:
                print(f"trial {n + 1} of {test.trials}:")
            _print_run(summary, out)
            if summary["records"].get("lost") or summary["warnings"]:
                status = 1
    return status


def _percent(text, flag):
    """A percentage: "0.1%" or "0.1" (percent either way), as a fraction."""
    try:
        value = float(str(text).strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not a percentage like 0.1%") from None
    if math.isnan(value):
        raise ValueError(f"{flag}: {text!r} is not a percentage like 0.1%")
    return value / 100


def _rfc2544_settings(args):
    """`Settings` from the flags, validated; the RFC's trial lengths unless the device is
    the virtual board (shorter ones there) or a flag gives them."""
    from . import rfc2544
    from .units import parse_duration
    seconds = lambda text: None if text is None else float(parse_duration(text))  # noqa: E731
    try:
        sizes = tuple(int(size) for size in args.sizes.split(","))
    except ValueError:
        raise ValueError(f"--sizes: {args.sizes!r} is not a list like 64,128,1518") from None
    fields = dict(dst_ip=args.dst_ip, dst_port=args.dst_port, src_ip=args.src_ip,
                  src_mac=args.src_mac, sizes=sizes,
                  tests=tuple(t.strip() for t in args.tests.split(",")),
                  trial_s=seconds(args.trial), search_trial_s=seconds(args.search_trial),
                  resolution=_percent(args.resolution, "--resolution"),
                  accept_loss=_percent(args.accept_loss, "--accept-loss"),
                  latency_trial_s=seconds(args.latency_trial), latency_trials=args.latency_trials,
                  b2b_trial_s=seconds(args.b2b_trial), b2b_trials=args.b2b_trials,
                  settle_s=seconds(args.settle), dst_mac=args.dst_mac)
    virtual = args.device.startswith("sim://")
    given = {k: v for k, v in fields.items() if v is not None}
    settings = rfc2544.Settings.for_virtual_board(rfc2544.RFC2544_SETTLE_S, **given) \
        if virtual else rfc2544.Settings(**given)
    return settings.validate()


def cmd_rfc2544(args):
    import wirestamp
    from . import rfc2544
    from .signals import Interrupted
    settings = _rfc2544_settings(args)      # bad input refused before the device is touched
    with _run_folder(args.out, args.overwrite, "rfc2544") as claimed, \
            wirestamp.open(args.device) as dev:
        folder = claimed.folder
        if args.settle is None and settings.shortened:     # the virtual DUT's longest delay
            settings.settle_s = getattr(dev.transport, "settle_s", settings.settle_s)
        dev.set_address(settings.src_mac, settings.src_ip)
        if settings.dst_mac == "ff:ff:ff:ff:ff:ff" and not args.dst_mac:
            settings.dst_mac = dev.resolve(settings.dst_ip)
        for note in settings.notes():
            print(f"note: {note}", file=sys.stderr)
        status = _status(not args.quiet)
        try:
            results = rfc2544.run(dev, settings, folder, progress=status)
        except Interrupted:
            status(None)
            print(f"wirestamp: stopped the stream; what the finished tests found is in "
                  f"{folder}", file=sys.stderr)
            raise
        status(None)
    _print_rfc2544(results, folder)
    return 0


def _status(enabled):
    """A one-line live status (rich), fed text; None closes it."""
    if not enabled:
        return lambda text: None
    from rich.console import Console
    live = Console(stderr=True).status("")
    live.start()
    return lambda text: live.stop() if text is None else live.update(text)


def _print_rfc2544(results, folder):
    for e in results["throughput"]:
        print(f"throughput {e['size']} B: {e['rate_pps']:,.0f} frames/s, {e['mbps']:,.1f} Mb/s "
              f"({e['percent_of_line']:.2f} % of line)")
    for e in results["latency"]:
        if e["frames"]:
            print(f"latency {e['size']} B at {e['rate_pps']:,.0f} frames/s: min {e['min_ns']} "
                  f"mean {e['mean_ns']:,.1f} p99 {e['p99_ns']} max {e['max_ns']} ns "
                  f"({e['frames']:,} frames)")
    for e in results["loss"]:
        print(f"frame loss {e['size']} B: " + ", ".join(
            f"{st['percent_of_line']} %: {st['loss_percent']:.2f} %" for st in e["steps"]))
    for e in results["back_to_back"]:
        print(f"back-to-back {e['size']} B: {e['frames_mean']:,.1f} frames "
              f"({e['frames_min']:,}-{e['frames_max']:,}), buffer "
              f"{e['buffer_time_s'] * 1e6:,.2f} µs" +
              ("" if e["corrected_buffer_time_s"] is None else
               f", corrected {e['corrected_buffer_time_s'] * 1e6:,.2f} µs"))
    print(f"wrote {folder / 'report.md'} and {folder / 'results.json'} "
          f"({results['trials']} trials)")


def _listen(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 0xFFFF:
        raise ValueError(f"--listen: {text!r} is not HOST:PORT, like 127.0.0.1:9420")
    return host, int(port)


def cmd_monitor(args):
    import wirestamp
    from .device import LinkError
    from .signals import Interrupted
    from .history import History, HistoryError
    from .monitor import Collector, Monitor, sample
    from .units import parse_duration
    interval = float(parse_duration(args.interval))
    duration = float(parse_duration(args.duration)) if args.duration else None
    if not 1 <= args.streams <= regmap.MAX_STREAMS:
        raise ValueError(f"--streams: {args.streams}; 1..{regmap.MAX_STREAMS}")
    listen = _listen(args.listen) if args.listen else None
    test = None
    if args.config:
        from .streams import load
        test = load(args.config)
    streams = len(test.streams) if test else args.streams
    try:        # an unwritable --out is said before the unit is touched
        history = History(args.out, streams) if args.out else None
    except HistoryError as error:
        print(f"wirestamp: {error}", file=sys.stderr)
        return 1
    began = time.monotonic()
    dev = wirestamp.open(args.device)
    monitor = Monitor(streams)
    failed = None
    configured = {}
    server = None
    view = lambda *_: None                  # noqa: E731 (until the live view starts)
    try:
        if streams > dev.info.streams:
            raise ValueError(f"{'--config' if test else '--streams'}: {streams} streams; the "
                             f"unit carries {dev.info.streams}")
        if test:
            dev.set_address(test.unit_mac, test.unit_ip)
            for row in test.resolve:
                test.streams[row].dst_mac = dev.resolve(test.streams[row].dst_ip)
            dev.configure(test.streams)
            dev.set_record_sample(0)            # the statistics see every packet
            configured = {i: float(s.profile.peak) for i, s in enumerate(test.streams)}
            dev.start()
        collector = Collector(monitor, rates=configured)
        if listen:
            from prometheus_client import CollectorRegistry, start_http_server
            registry = CollectorRegistry()
            registry.register(collector)
            try:
                server = start_http_server(listen[1], addr=listen[0], registry=registry)
            except OSError as error:
                raise ValueError(f"--listen {args.listen}: {error.strerror}") from None
            print(f"Prometheus metrics on http://{listen[0]}:{listen[1]}/metrics",
                  file=sys.stderr)
        view = _monitor_view(not args.quiet)
        left = lambda: None if duration is None else duration - (time.monotonic() - began)  # noqa: E731
        while left() is None or left() > 0:
            tick = time.monotonic()
            try:
                s = sample(dev, streams, histograms=True)
                rates = monitor.add(s)
                if history:
                    history.add(monitor, s)
            except LinkError as error:      # the gap is a gap; the totals carry on after it
                monitor.gaps += 1
                print(f"wirestamp: link lost ({error}); reconnecting", file=sys.stderr)
                dev = _reconnect(wirestamp.open, args.device, dev, left)
                if dev is None:
                    break
                continue
            view(monitor, s, rates)
            time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    except (KeyboardInterrupt, Interrupted):
        pass                        # Ctrl-C and SIGTERM end a monitor normally: exit 0
    except HistoryError as error:   # a full disk: the files on it are whole, the last minute lost
        failed = error
    finally:
        view(None, None, None)
        if history:
            try:
                history.close()
            except HistoryError as error:
                failed = failed or error
        if server:
            server[0].shutdown()
        if dev is not None:
            try:
                if test:
                    dev.stop()
                dev.close()
            except (LinkError, OSError):
                pass
    print(f"{monitor.samples} samples, {monitor.restarts} unit restarts, {monitor.gaps} link "
          f"gaps" + (f"; history in {args.out}" if history else ""), file=sys.stderr)
    if failed:
        print(f"wirestamp: {failed}", file=sys.stderr)
        return 1
    return 0


def _reconnect(opener, url, dev, left, longest=30.0):
    """Close `dev`, open `url` again with a backoff of 1, 2, 4 … `longest` s until it
    answers or the time `left()` runs out (None then)."""
    from .device import LinkError
    try:
        dev.close()
    except (LinkError, OSError):
        pass
    wait = 1.0
    while left() is None or left() > 0:
        try:
            dev = opener(url)
            dev.identify()
            print("wirestamp: reconnected", file=sys.stderr)
            return dev
        except (LinkError, OSError) as error:
            print(f"wirestamp: {error}; again in {wait:.0f} s", file=sys.stderr)
        time.sleep(wait if left() is None else max(0.0, min(wait, left())))
        wait = min(2 * wait, longest)
    return None


def _monitor_view(enabled):
    """A rich Live table of the latest sample, per stream; called with None to close."""
    if not enabled:
        return lambda monitor, s, rates: None
    from rich.live import Live
    from rich.table import Table
    from .monitor import own_usage
    live = Live(auto_refresh=False)
    live.start()

    def show(monitor, s, rates):
        if monitor is None:
            live.stop()
            return
        table = Table(title=f"wirestamp monitor: sample {monitor.samples}, unit clock "
                            f"{s.time_ns / 1e9:,.1f} s")
        for column in ("stream", "tx pps", "rx pps", "rx Mb/s", "lost", "reordered",
                       "duplicates", "latency min/mean/max ns", "jitter ns"):
            table.add_column(column, justify="right")
        for row in s.streams:
            latency = "-" if row.latency_mean_ns is None else \
                f"{row.latency_min_ns:,}/{row.latency_mean_ns:,.0f}/{row.latency_max_ns:,}"
            table.add_row(str(row.stream), f"{rates.get((row.stream, 'tx_packets'), 0):,.0f}",
                          f"{rates.get((row.stream, 'rx_packets'), 0):,.0f}",
                          f"{rates.get((row.stream, 'rx_bytes'), 0) * 8 / 1e6:,.2f}",
                          f"{row.lost:,}", f"{row.reordered:,}", f"{row.duplicates:,}",
                          latency,
                          "-" if row.jitter_ns is None else f"{row.jitter_ns:,.1f}")
        errors = {k: v for k, v in s.counters.items()
                  if v and k in ("rx_fcs_errors", "rx_errors", "rx_runts", "rx_giants",
                                 "rx_preamble_errors", "rx_ip_errors", "reply_dropped",
                                 "record_overflow", "sched_late")}
        table.caption = ("errors: " + ", ".join(f"{k} {v:,}" for k, v in errors.items())
                         if errors else "no errors") + \
            "; monitor RSS {:.1f} MiB, CPU {:.1f} s".format(*own_usage())
        live.update(table, refresh=True)
    return show


def _utc_time(text, flag):
    import datetime
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not a time like 2026-12-01T17:00 (UTC unless "
                         f"it says +HH:MM)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def cmd_plot(args):
    from .history import TIERS, load, window
    from .plots import history_figures
    from .units import parse_duration
    folder = Path(args.dir)
    start = _utc_time(args.start, "--from") if args.start else None
    end = _utc_time(args.end, "--to") if args.end else None
    last = float(parse_duration(args.last)) if args.last else None
    if not any((folder / tier.name).is_dir() for tier in TIERS):
        raise ValueError(f"{folder}: no monitor history there (`wirestamp monitor --out "
                         f"{folder}` keeps one)")
    # The finest tier that holds the whole window, with few enough rows to draw.
    tiers = [t for t in TIERS if args.tier in ("auto", t.name)]
    found = {t.name: load(folder, t.name, start, end) for t in tiers}
    edges = [(f.column("time")[0].value / 1e3, f.column("time")[-1].value / 1e3)
             for f in found.values() if f is not None]
    if not edges:
        raise ValueError(f"{folder}: no samples in that window")
    wanted = start if start is not None else min(first for first, _ in edges)
    if last is not None:
        wanted = max(wanted, max(final for _, final in edges) - last)
    table = tier = None
    for tier in tiers:
        if found[tier.name] is None:
            continue
        table = window(found[tier.name], wanted)
        if table is not None and (args.tier != "auto" or (
                len(table) <= 20_000 and table.column("time")[0].value / 1e3
                <= wanted + 2 * max(tier.step, 1))):
            break
    if table is None:
        raise ValueError(f"{folder}: no samples in that window")
    out = Path(args.out) if args.out else folder / "plots"
    out.mkdir(parents=True, exist_ok=True)
    import numpy as np
    times = table.column("time").cast("int64").to_numpy()
    interval = tier.step or (float(np.median(np.diff(times))) / 1e3 if len(times) > 1 else 1.0)
    names = history_figures(table, interval, out)
    first, final = (str(table.column("time")[i]) for i in (0, -1))
    print(f"wrote {len(names)} figures to {out} ({len(table):,} rows of the {tier.name} tier, "
          f"{first} to {final})")
    return 0


def cmd_scpi(args):
    from .run import stop_streams
    from .scpi import Server, markdown, parse_allow
    from .signals import Interrupted
    from .units import parse_duration
    if args.doc:
        print(markdown(), end="")
        return 0
    if not args.device:
        raise ValueError("--device is needed (or --doc)")
    host, port = _listen(args.listen)
    allow = parse_allow(args.allow) if args.allow else None
    idle = float(parse_duration(args.idle))
    if not 0 < idle <= 86_400:
        raise ValueError(f"--idle {args.idle}: between 1 ms and a day")
    if not 1 <= args.max_clients <= 256:
        raise ValueError(f"--max-clients {args.max_clients}: 1..256")
    local = host in ("localhost", "::1") or host.startswith("127.")
    if not local and allow is None:
        print(f"wirestamp: warning: {host}:{port} is open to every host that can reach it, "
              f"and any of them can start 1 Gb/s of traffic; give --allow NETWORK "
              f"(docs/scpi.md, \"Who may connect\")", file=sys.stderr)
    import wirestamp
    scheme = args.device.split(":", 1)[0]
    board = {"sim": "virtual", "usb": "ecpix5", "serial": "uart"}.get(scheme, scheme)
    with wirestamp.open(args.device) as dev:
        dev.identify()
        try:
            server = Server(dev, host, port, board=board, max_clients=args.max_clients,
                            idle=idle, allow=allow)
        except OSError as error:
            raise ValueError(f"--listen {args.listen}: {error.strerror}") from None
        print(f"SCPI on {host}:{port} (VISA: TCPIP::{host}::{port}::SOCKET); Ctrl-C ends it",
              file=sys.stderr)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, Interrupted):
            pass
        finally:
            server.close()
            with server.shared.lock:        # no client's command is half done
                stopped = stop_streams(dev)
        print(f"wirestamp: {server.served} clients served, {server.refused} refused (too "
              f"many), {server.outsiders} outside --allow; the streams: {stopped['how']}",
              file=sys.stderr)
    return 0


def cmd_calibrate(args):
    import wirestamp
    from .calibrate import CalibrationError, Counter, calibrate, saved_trim
    from .units import parse_duration
    text = args.tolerance.strip().lower().removesuffix("ppm")
    try:
        tolerance = float(text)
    except ValueError:
        raise ValueError(f"--tolerance: {args.tolerance!r} is not like 0.01ppm") from None
    if not 0.005 <= tolerance <= 100:
        raise ValueError(f"--tolerance: {tolerance} ppm; 0.005..100 (the trim's step is "
                         f"0.0075 ppm)")
    gate = float(parse_duration(args.gate))
    if not args.apply and not args.counter:
        raise ValueError("--counter VISA_RESOURCE is needed (or --apply FILE)")
    counter = None
    try:
        ppm = saved_trim(args.apply) if args.apply else None    # checked before the unit
        if not args.apply:              # the counter answers before the unit is touched
            counter = Counter(args.counter, args.visa_library, gate, args.measure)
            print(f"counter: {counter.identity}", file=sys.stderr)
        with wirestamp.open(args.device) as dev:
            if args.apply:
                dev.trim(ppm)
                print(f"trim {ppm:+.4f} ppm from {args.apply}")
                return 0
            result = calibrate(dev, counter, tolerance, args.steps,
                               log=lambda line: print(line, file=sys.stderr))
    except CalibrationError as error:
        print(f"wirestamp: {error}" + ("" if args.apply else "; the unit's trim is as it was"),
              file=sys.stderr)
        return 1
    finally:
        if counter is not None:
            counter.close()
    result.save(args.save)
    print(f"trim {result.trim_ppm:+.4f} ppm, within {tolerance} ppm after "
          f"{len(result.steps) - 1} steps; wrote {args.save} (`wirestamp calibrate --apply "
          f"{args.save}` sets it again)")
    return 0


def cmd_reflect(args):
    import ipaddress
    from .reflect import Reflector
    from .units import parse_duration
    seconds = float(parse_duration(args.duration)) if args.duration else None
    if not 0 <= args.port <= 0xFFFF:
        raise ValueError(f"--port {args.port}: a UDP port is 1..65535 (0: any free one)")
    try:
        ipaddress.IPv4Address(args.bind)
    except ValueError:
        raise ValueError(f"--bind {args.bind!r}: an IPv4 address of this machine (0.0.0.0: "
                         f"all of them)") from None
    if args.count is not None and args.count < 1:
        raise ValueError(f"--count {args.count}: at least 1")
    if not 1 <= args.max_rate <= 10_000_000:
        raise ValueError(f"--max-rate {args.max_rate}: 1..10000000 answers per second")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {args.out}: the folder {out.parent} does not exist")
    try:
        reflector = Reflector(args.port, bind=args.bind, log=args.out, echo_all=args.echo_all,
                              max_pps=args.max_rate)
    except OSError as error:
        raise ValueError(f"--bind {args.bind} --port {args.port}: {error.strerror or error}"
                         + (" (another program listens there)" if error.errno == 98 else "")
                         + (" (not an address of this machine)" if error.errno == 99 else "")) \
            from None
    # SIGINT or SIGTERM ends the loop after the datagram in hand, and the log is flushed.
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(stop, lambda *_: reflector.stop()) for stop in stops]
    try:
        print(f"reflecting the unit's datagrams on {args.bind}:{reflector.port}, log "
              f"{args.out}", file=sys.stderr, flush=True)
        reflector.serve(count=args.count, seconds=seconds)
    finally:
        for stop, handler in zip(stops, previous):
            signal.signal(stop, handler)
    print(f"{reflector.reflected} signature datagrams reflected, {reflector.foreign} others "
          f"({'echoed' if args.echo_all else 'not answered'}), {reflector.looped} from a "
          f"reflector's or service's port (not answered), {reflector.over_rate} over "
          f"--max-rate, {reflector.unanswered} not answered (no route back)", file=sys.stderr)
    return 0


def _address_flags(parser):
    """The DUT's port and MAC and the unit's own address, as `run` and `rfc2544` take them."""
    parser.add_argument("--dst-port", type=int, default=5001, help="UDP port (default 5001)")
    parser.add_argument("--dst-mac", help="the DUT's MAC (default: asked by ARP from the unit)")
    parser.add_argument("--src-ip", default="192.168.0.2",
                        help="the unit's own IPv4 address, on the DUT's subnet (default "
                             "192.168.0.2)")
    parser.add_argument("--src-mac", default="02:77:73:00:00:01",
                        help="the unit's own MAC (default 02:77:73:00:00:01, locally "
                             "administered)")


def _output_flags(parser, kind, settle, quiet):
    parser.add_argument("--settle", help=f"{settle} on the unit's clock for frames in flight "
                                         f"(default: 2s, RFC 2544; the virtual board: its "
                                         f"DUT's longest delay)")
    parser.add_argument("--out", help=f"output folder (default: a new out/{kind}-TIME)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into --out even if it holds earlier results")
    parser.add_argument("--quiet", action="store_true", help=quiet)


def main(argv=None):
    from . import __version__
    parser = argparse.ArgumentParser(prog="wirestamp",
                                     description="Hardware network tester: host tools.")
    parser.add_argument("--version", action="version",
                        version=f"wirestamp {__version__} (contract "
                                f"{regmap.VERSION >> 16}.{regmap.VERSION & 0xFFFF})")
    sub = parser.add_subparsers(dest="command", required=True)

    regs = sub.add_parser("regs", help="print the register map (Markdown)")
    regs.add_argument("--check", metavar="FILE",
                      help="exit 1 if FILE differs from the generated map")
    regs.set_defaults(func=cmd_regs)

    info = sub.add_parser("info", help="identify a unit and show its counters")
    info.add_argument("--device", required=True, help=DEVICE_HELP)
    info.set_defaults(func=cmd_info)

    run = sub.add_parser("run", help="send streams (flags, or a test file), measure them, "
                                     "write summary.json and records.parquet")
    run.add_argument("--device", required=True, help=DEVICE_HELP)
    run.add_argument("--config", metavar="FILE",
                     help="a test file (TOML): the unit's address, [[streams]], trials, out "
                          "(README: Tests in files); instead of the stream flags below")
    run.add_argument("--dst-ip", help="the DUT's IPv4 address (one stream)")
    _address_flags(run)
    run.add_argument("--frame-size", type=int, default=64,
                     help="bytes on the wire with FCS, 64-1518 (default 64)")
    run.add_argument("--rate", default="1000pps",
                     help="line, 1000pps, 100mbps, ramp:0-9000pps/60s or updown:9000pps/60s")
    limit = run.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int, help="packets to send")
    limit.add_argument("--duration", help="e.g. 250ms, 10s (a constant rate needs this or "
                                          "--count; a profile carries its own length)")
    run.add_argument("--record-sample", type=int, default=1, metavar="N",
                     help="per-packet records: 1 every packet (default), N one in N, 0 none")
    _output_flags(run, "run", "after the streams end, wait this long", "no progress bar")
    run.set_defaults(func=cmd_run)

    from .rfc2544 import SIZES
    rfc = sub.add_parser("rfc2544", help="RFC 2544 throughput, latency, frame loss and "
                                          "back-to-back per frame size; report.md, results.json")
    rfc.add_argument("--device", required=True, help=DEVICE_HELP)
    rfc.add_argument("--dst-ip", required=True, help="the DUT's IPv4 address")
    _address_flags(rfc)
    rfc.add_argument("--sizes", default=",".join(map(str, SIZES)),
                     help="frame sizes, bytes with FCS, 64-1518 (default: RFC 2544's seven)")
    rfc.add_argument("--tests", default="throughput,latency,loss,back-to-back",
                     help="any of throughput,latency,loss,back-to-back (default: all)")
    rfc.add_argument("--trial", help="throughput and frame loss trials (default 60s; the "
                                     "virtual board 5ms)")
    rfc.add_argument("--search-trial", help="throughput search trials, the result confirmed "
                                            "by one of --trial (default: --trial)")
    rfc.add_argument("--resolution", default="0.1%",
                     help="the throughput search stops at this much of line rate (0.1%%)")
    rfc.add_argument("--accept-loss", default="0",
                     help="loss a throughput trial may have, %% of frames (default 0: the "
                          "RFC's zero-loss throughput)")
    rfc.add_argument("--latency-trial", help="default 120s; the virtual board 5ms")
    rfc.add_argument("--latency-trials", type=int, help="default 20; the virtual board 3")
    rfc.add_argument("--b2b-trial", help="longest back-to-back burst (default 2s; the "
                                         "virtual board 1ms)")
    rfc.add_argument("--b2b-trials", type=int, help="default 50; the virtual board 3")
    _output_flags(rfc, "rfc2544", "after each trial, wait this long", "no live status")
    rfc.set_defaults(func=cmd_rfc2544)

    mon = sub.add_parser("monitor", help="sample the unit's counters and statistics at an "
                                          "interval: a live view and a Prometheus exporter")
    mon.add_argument("--device", required=True, help=DEVICE_HELP)
    mon.add_argument("--interval", default="1s", help="between samples (default 1s)")
    mon.add_argument("--listen", metavar="HOST:PORT",
                     help="serve Prometheus metrics there, e.g. 127.0.0.1:9420")
    mon.add_argument("--out", metavar="DIR",
                     help="keep the history there: Parquet, every sample for a day, a row per "
                          "minute for a month, per hour for years (`wirestamp plot DIR`)")
    mon.add_argument("--duration", help="stop after this long (default: until Ctrl-C or "
                                        "SIGTERM)")
    mon.add_argument("--config", metavar="FILE", help="start this test file's streams first")
    mon.add_argument("--streams", type=int, default=1,
                     help="streams to watch without --config (default 1: stream 0)")
    mon.add_argument("--quiet", action="store_true", help="no live view")
    mon.set_defaults(func=cmd_monitor)

    cal = sub.add_parser("calibrate", help="trim the timestamp clock against a lab counter "
                                           "read through VISA (or --apply a saved trim)")
    cal.add_argument("--device", required=True, help=DEVICE_HELP)
    cal.add_argument("--counter", metavar="VISA_RESOURCE",
                     help="e.g. TCPIP::192.168.1.50::INSTR: a counter on the unit's "
                          "reference pin (docs/boards.md)")
    cal.add_argument("--visa-library", default="",
                     help="pyvisa's backend: @py (pyvisa-py), @ivi, @sim (default: pyvisa's)")
    cal.add_argument("--measure", choices=["freq", "period"], default="freq",
                     help="freq: the 15.625 MHz square wave (default); period: the 1 PPS")
    cal.add_argument("--gate", default="1s", help="the counter's gate time (default 1s)")
    cal.add_argument("--tolerance", default="0.01ppm", help="stop within this (default 0.01ppm)")
    cal.add_argument("--steps", type=int, default=8, help="trims at most (default 8)")
    cal.add_argument("--save", default="calibration.json",
                     help="where the result goes (default calibration.json)")
    cal.add_argument("--apply", metavar="FILE", help="set the trim saved in FILE; no counter")
    cal.set_defaults(func=cmd_calibrate)

    scpi = sub.add_parser("scpi", help="serve the unit to VISA clients: SCPI on a raw socket "
                                       "(docs/scpi.md)")
    scpi.add_argument("--device", help=DEVICE_HELP)
    scpi.add_argument("--listen", default="127.0.0.1:5025", metavar="HOST:PORT",
                      help="default 127.0.0.1:5025 (LXI's SCPI port); 0.0.0.0:5025 with "
                           "--allow for the lab")
    scpi.add_argument("--allow", metavar="NETWORKS",
                      help="only these clients, e.g. 192.168.1.0/24,10.0.0.5 (default: any; "
                           "a warning when --listen is not loopback)")
    scpi.add_argument("--max-clients", type=int, default=16,
                      help="clients at once; more are refused (default 16)")
    scpi.add_argument("--idle", default="600s",
                      help="close a client silent this long (default 600s)")
    scpi.add_argument("--doc", action="store_true", help="print the command tree (Markdown)")
    scpi.set_defaults(func=cmd_scpi)

    plot = sub.add_parser("plot", help="figures (PNG) of a monitor's history over any window: "
                                       "rates, packets, loss and errors, latency, the "
                                       "monitor's own memory and CPU")
    plot.add_argument("dir", metavar="DIR", help="what `wirestamp monitor --out DIR` wrote")
    plot.add_argument("--from", dest="start", metavar="TIME",
                      help="from this time, e.g. 2026-12-01T17:00 (UTC)")
    plot.add_argument("--to", dest="end", metavar="TIME", help="up to this time")
    plot.add_argument("--last", metavar="DURATION",
                      help="only the last part, e.g. 6h or 7d (before the newest sample)")
    plot.add_argument("--tier", choices=["auto", "1s", "1min", "1h"], default="auto",
                      help="which history: every sample, per minute or per hour (default: the "
                           "finest that has the window)")
    plot.add_argument("--out", help="default: DIR/plots")
    plot.set_defaults(func=cmd_plot)

    reflect = sub.add_parser("reflect", help="UDP echo agent for the machine under test, "
                                             "logging kernel and application times")
    reflect.add_argument("--port", type=int, default=5001, help="UDP port (default 5001)")
    reflect.add_argument("--bind", default="0.0.0.0",
                         help="the address to listen on (default 0.0.0.0: every interface; "
                              "give the DUT's address on the unit's network to keep to it)")
    reflect.add_argument("--out", default="reflections.bin")
    reflect.add_argument("--echo-all", action="store_true",
                         help="echo any datagram, not only the unit's (never to a reflector's "
                              "or an echo/chargen port)")
    reflect.add_argument("--max-rate", type=int, default=200_000, metavar="PPS",
                         help="answers per second at most (default 200000)")
    reflect.add_argument("--count", type=int, help="stop after this many datagrams")
    reflect.add_argument("--duration", help="stop after this long, e.g. 60s")
    reflect.set_defaults(func=cmd_reflect)

    demo = sub.add_parser("demo", help="the paper's experiment on the virtual board: the rate "
                                       "up to a peak and down, several trials, its statistics "
                                       "and plots")
    demo.add_argument("--dut", choices=["echo", "linux", "loopback"], default="echo",
                      help="echo: a DUT model (default); linux: the kernel, through a TAP "
                           "device in a network namespace (needs root)")
    demo.add_argument("--peak", type=float, default=100_000, help="peak rate, pps")
    demo.add_argument("--seconds", type=float, default=0.04,
                      help="simulated duration of one trial")
    demo.add_argument("--trials", type=int, default=10)
    demo.add_argument("--link", choices=["serial", "usb"], default="serial",
                      help="how the host reaches the virtual board: its control link's "
                           "frames, or the usb:// transport through pyusb")
    demo.add_argument("--out", default="out/demo", help="output folder")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=cmd_demo)

    boards = BOARDS
    build = sub.add_parser("build", help="build a board's bitstream with the YoWASP tools; "
                                         "fails when a clock misses its frequency")
    build.add_argument("--board", choices=boards, required=True)
    build.add_argument("--port", type=int, default=0,
                       help="the RGMII port (0 or 1) that transmits, and receives unless --rx-port")
    build.add_argument("--rx-port", type=int,
                       help="receive on this port instead (transmit on --port, through a DUT)")
    build.add_argument("--out", default="build/boards")
    build.add_argument("--seed", type=int,
                       help="nextpnr's placement seed (default: the board's, docs/timing.md)")
    build.add_argument("--router", choices=("router1", "router2"),
                       help="default: the board's (router1 on the Colorlight, the faster "
                            "image; router2 on the Versa, where router1 did not finish)")
    build.set_defaults(func=cmd_build)

    flash = sub.add_parser("flash", help="program a board with openFPGALoader (SRAM, or SPI "
                                         "flash with --flash)")
    flash.add_argument("--board", choices=boards, required=True)
    flash.add_argument("--bitstream", help="default: what `wirestamp build` wrote")
    flash.add_argument("--out", default="build/boards")
    flash.add_argument("--flash", action="store_true", help="write the SPI flash (persists)")
    flash.set_defaults(func=cmd_flash)

    args = parser.parse_args(argv)
    from . import signals
    from .device import LinkError, ResolveError
    from .files import DiskFull
    previous = signals.install()     # SIGINT and SIGTERM: Interrupted (signals.py)
    try:
        return args.func(args)
    except LinkError as error:           # the unit did not answer: say so, with a hint
        print(f"wirestamp: {error}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except DiskFull as error:            # the path and the space left
        print(f"wirestamp: {error}", file=sys.stderr)
        return EXIT_DISK_FULL
    except ResolveError as error:        # ARP got no answer: say what to check
        print(f"wirestamp: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:              # `wirestamp info | head`: the reader has gone
        sys.stderr.close()
        return 0
    except (KeyboardInterrupt, signals.Interrupted) as error:
        print("wirestamp: interrupted", file=sys.stderr)
        return 128 + getattr(error, "signum", signal.SIGINT)
    except RuntimeError as error:        # a missing tool or a failed build: say so
        print(f"wirestamp: {error}", file=sys.stderr)
        return 2
    except ValueError as error:          # bad input: say which, touch nothing
        print(f"wirestamp: {error}", file=sys.stderr)
        return 2
    except OSError as error:             # a file or folder that cannot be read or written
        print(f"wirestamp: {error}", file=sys.stderr)
        return 2
    finally:
        signals.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
