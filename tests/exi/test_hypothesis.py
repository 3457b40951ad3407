"""
Property tests: random valid messages drawn from the schema model round-trip
through EXI and XML; random and mutated bytes raise nothing but ExiError.
"""

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from evsev2g.exi import ExiError, Message, load_codec
from evsev2g.exi.grammar import EV_AT, EV_EE, EV_SE
from evsev2g.exi.values import representation
from evsev2g.exi.xsd import ComplexType

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large])
TEXT = st.text(alphabet="abcXYZ019 .:*-_/#äé€", max_size=12)


def draw_value(data, stype):
    """Draw a valid Python value of a simple type."""
    rep = representation(stype)
    kind = rep.kind
    if kind in ("nbit", "uint", "int"):
        lo = rep.lo if rep.lo is not None else -(2 ** 70)
        hi = rep.hi if rep.hi is not None else 2 ** 70
        return data.draw(st.integers(lo, hi))
    if kind == "bool":
        return data.draw(st.booleans())
    if kind == "enum":
        return data.draw(st.sampled_from(rep.values))
    if kind == "binary":
        return data.draw(st.binary(min_size=rep.min_len, max_size=max(rep.min_len, min(rep.max_len or 24, 24))))
    if kind == "string":
        text = data.draw(st.text(alphabet="abcXYZ019 .:*-_/#äé€", min_size=rep.min_len,
                                 max_size=max(rep.min_len, min(rep.max_len or 12, 12))))
        return text
    raise AssertionError(f"no strategy for {kind}")


def draw_element(data, codec, decl, depth=0):
    """Draw a valid element of ``decl`` by walking its grammar's states."""
    t = decl.type
    if not isinstance(t, ComplexType):
        return draw_value(data, t)
    g = codec.grammars.grammar(t)
    attrs, children, value = {}, [], None
    state = g.states[0]
    counts = {}
    while True:
        choices = [ev for ev in state.events
                   if ev[0] in (EV_AT, EV_EE) or ev[0] == EV_SE and not
                   g.leaves[ev[1][0]].alternatives[ev[1][1]].abstract]
        if t.content == "simple" and state.index == g.content_start:
            choices = [ev for ev in state.events if ev[0] == EV_AT] + [("CH", None)]
        if depth > 6 and any(ev[0] == EV_EE for ev in choices):
            choices = [ev for ev in choices if ev[0] == EV_EE]
        ev = data.draw(st.sampled_from(choices))
        if ev[0] == EV_EE:
            break
        if ev[0] == "CH":
            value = draw_value(data, t.simple_type)
            state = g.states[g.simple_end]
            continue
        if ev[0] == EV_AT:
            au = g.attributes[ev[1]]
            attrs[au.name] = draw_value(data, au.type)
            state = g.states[g.after_attr[ev[1]]]
            continue
        leaf = g.leaves[ev[1][0]]
        alt = leaf.alternatives[ev[1][1]]
        prev = children[-1][2] if children else None
        counts[leaf.index] = counts.get(leaf.index, 0) + 1 if prev == leaf.index else 1
        children.append((alt.name, draw_element(data, codec, alt, depth + 1), leaf.index))
        state = g.states[g.after_leaf[(leaf.index, leaf.count_class(counts[leaf.index]))]]
    return Message(decl.name, [(k, v) for k, v, _ in children], attrs=attrs, value=value)


def message_strategy(codec):
    """Random valid V2G_Message/handshake documents of a codec."""
    root_names = {"appHandshake": ["supportedAppProtocolReq", "supportedAppProtocolRes"]}
    names = root_names.get(codec.name, ["V2G_Message"])

    @st.composite
    def build(draw):
        name = draw(st.sampled_from(names))
        decl = next(d for d in codec.grammars.globals if d.name == name)
        drawer = type("Drawer", (), {"draw": staticmethod(draw)})
        return draw_element(drawer, codec, decl)
    return build()


@pytest.mark.parametrize("name", ["appHandshake", "din70121", "iso15118-2"])
def test_random_valid_messages_round_trip(name):
    """``decode(encode(m)) == m`` and ``from_xml(to_xml(m)) == m`` for random valid messages."""
    codec = load_codec(name)

    @SETTINGS
    @given(message_strategy(codec))
    def check(msg):
        data = codec.encode(msg)
        assert codec.decode(data) == msg
        assert codec.encode(codec.decode(data)) == data
        assert codec.from_xml(codec.to_xml(msg)) == msg
    check()


def _only_exi_errors(codec, data):
    start = time.perf_counter()
    try:
        codec.decode(data)
    except ExiError:
        pass
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name,prefix", [("din70121", b"\x80\x9a"), ("iso15118-2", b"\x80\x98"),
                                         ("appHandshake", b"\x80")])
def test_random_bytes_raise_only_exi_error(name, prefix):
    """Random bytes after a plausible start end quickly in a decoded tree or ExiError, nothing else."""
    codec = load_codec(name)

    @SETTINGS
    @given(st.binary(max_size=200))
    def check(tail):
        _only_exi_errors(codec, prefix + tail)
    check()


def test_mutated_vectors_raise_only_exi_error(golden):
    """Bit flips, truncations and splices of golden vectors raise nothing but ExiError."""
    vectors = [(v["protocol"], bytes.fromhex(v["exi_hex"])) for v in golden if not v.get("fragment")]

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(vectors), st.integers(0, 10_000), st.integers(0, 7), st.integers(0, 300),
           st.binary(max_size=8))
    def check(vector, pos, bit, cut, junk):
        name, data = vector
        codec = load_codec(name)
        pos %= len(data)
        mutated = bytearray(data)
        mutated[pos] ^= 1 << bit
        _only_exi_errors(codec, bytes(mutated))
        _only_exi_errors(codec, data[: max(1, cut % len(data))] + junk)
    check()


def test_fragment_decoder_takes_random_bytes():
    """The fragment decoder (including the element fragment grammar) also raises only ExiError."""
    codec = load_codec("iso15118-2")

    @SETTINGS
    @given(st.binary(max_size=120))
    def check(tail):
        for grammar in (None, "xmldsig"):
            try:
                codec.decode_fragment(b"\x80" + tail, grammar=grammar, multiple=True)
            except ExiError:
                pass
    check()
