"""SNAPSHOT on the virtual board: while held, TIME, the unit-wide counters and every stream's
counts and statistics (the jitter unit's figures aside) hold still and belong to one
instant, while the traffic goes on; let go, they move again; and a Device lets go of a
snapshot that another left held."""
from dataclasses import replace

import wirestamp
from wirestamp.device import Device
from wirestamp.streams import Stream

ECHO_MAC = "02:00:00:00:00:09"
STREAMS = 3
RATE = 200_000                  # pps a stream
DELAY_NS = 9_000                # the echo's longest delay


def held(row):
    """A stream's figures that a snapshot holds: all but the jitter unit's."""
    return replace(row, jitter_ns=None, ipdv_min_ns=None, ipdv_max_ns=None,
                   ipdv_mean_abs_ns=None)


def everything(dev):
    return (dev.read_register("TIME"), dev.read_register("ACTIVE"), dev.counters(),
            [held(dev.stream_stats(i)) for i in range(STREAMS)])


def test_a_snapshot_holds_every_count_at_one_instant_while_traffic_goes_on():
    with wirestamp.open("sim://?dut=echo&delay=uniform:2us-9us") as dev:
        dev.configure([Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=RATE) for _ in range(STREAMS)])
        dev.set_record_sample(0)
        dev.start()
        while dev.stream_stats(STREAMS - 1).rx_packets < 20:
            pass
        with dev.snapshot():
            first = everything(dev)
            again = everything(dev)         # the traffic went on meanwhile
        after = everything(dev)
        dev.stop()
    assert again == first, "held still"
    time_ns, active, counters, rows = first
    assert after[0] > time_ns and after[2]["rx_signed"] > counters["rx_signed"], "let go"
    assert active == (1 << STREAMS) - 1
    # One instant: what was sent is received, lost, or still on its way (at most a delay's
    # worth at the rate, and one frame in the generator); each record counted by the parser
    # is in its stream's statistics, or one of the few in the crossing between them.
    in_flight = RATE * DELAY_NS // 10**9 + 2
    for row in rows:
        assert row.rx_packets > 0
        assert 0 <= row.tx_packets - row.rx_packets - row.lost <= in_flight, row
    received = sum(row.rx_packets for row in rows)
    assert 0 <= counters["rx_signed"] - received <= 4
    sent = sum(row.tx_packets for row in rows)
    assert 0 <= sent - counters["tx_frames"] <= STREAMS, (sent, counters["tx_frames"])


def test_a_new_device_lets_go_of_a_snapshot_left_held():
    with wirestamp.open("sim://") as dev:
        dev.write_register("SNAPSHOT", 1)       # as a process that died inside snapshot()
        held = dev.read_register("TIME")
        assert dev.read_register("TIME") == held
        fresh = Device(dev.transport)
        assert fresh.read_register("TIME") > held
        assert dev.read_register("TIME") < fresh.read_register("TIME")
