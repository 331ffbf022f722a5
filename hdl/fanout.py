"""Registers copied for fan-out, and the timing idioms built on them.

One flip-flop that feeds several hundred loads (the address or write enable of a row of LUT
RAMs, the choice behind a wide register) cannot reach them all within 8 ns on the ECP5: the
routing alone took 7–8 ns. `copies` gives registers that the caller loads with the same value,
each driving a share of the loads. Yosys would merge registers with the same inputs, so their
names carry `TAG` and the board build marks the flip-flops behind such names `keep`
(`KEEP_COPIES`, run after the design is read). Simulation needs nothing of this.

The idioms:
- `load_in_shares`: a wide register loaded slice by slice, each slice under its own copy of
  the enables, so no enable reaches more than a share of the flip-flops;
- `and_or`: a multiplexer under a one-hot select, an AND-OR with no address decode (a binary
  select costs a LUT level more);
- `pick`: the same over many words in two registered levels, pairs then the word.
"""
import operator
from functools import reduce

from amaranth import Signal, Value

__all__ = ["copies", "shares", "load_in_shares", "and_or", "pick", "KEEP_COPIES"]

TAG = "fanout"
KEEP_COPIES = f"setattr -set keep 1 w:*_{TAG}* %ci1:+$dff[Q] t:$dff %i"


def copies(shape, count, name):
    """`count` registers of `shape` for the caller to load alike."""
    return [Signal(shape, name=f"{name}_{TAG}{index}") for index in range(count)]


def shares(width, count):
    """A `width`-bit register cut into `count` slices, one per copy of what steers it."""
    part = -(-width // count)
    return [slice(part * index, part * (index + 1)) for index in range(count)]


def load_in_shares(m, target, loads, domain="sync"):
    """Load `target` in as many slices as each enable has copies. `loads` are (enables,
    value) in priority order: slice i takes slice i of the first value whose `enables[i]` is
    high. A value is as wide as `target` (narrower: zero-extended), or a function of i giving
    it, for a value that itself depends on the slice's copies."""
    target = Value.cast(target)
    count = len(loads[0][0])
    assert all(len(enables) == count for enables, _ in loads)
    for index, bits in enumerate(shares(len(target), count)):
        for order, (enables, value) in enumerate(loads):
            value = Value.cast(value(index) if callable(value) else value)
            with (m.Elif if order else m.If)(enables[index]):
                m.d[domain] += target[bits].eq(value[bits])


def and_or(choices):
    """The value of (select, value) `choices` whose select is high, with at most one high
    (none: 0)."""
    width = max(len(Value.cast(value)) for _, value in choices)
    return reduce(operator.or_, (select.replicate(width) & value for select, value in choices))


def pick(m, words, onehot, name, domain="sync"):
    """The word of `words` that `onehot` marks, two cycles later: pairs AND-OR-ed into
    registers (`name`0, 1, ...), then the pairs OR-ed into the result's register."""
    width = max(len(Value.cast(word)) for word in words)
    pairs = []
    for first in range(0, len(words), 2):
        pair = Signal(width, name=f"{name}{first // 2}")
        m.d[domain] += pair.eq(and_or([(onehot[index], words[index])
                                       for index in range(first, min(first + 2, len(words)))]))
        pairs.append(pair)
    word = Signal(width, name=name)
    m.d[domain] += word.eq(reduce(operator.or_, pairs))
    return word
