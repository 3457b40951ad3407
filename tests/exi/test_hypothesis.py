"""
Property tests: random valid messages drawn from the schema model round-trip
through EXI and XML; random and mutated bytes raise nothing but ExiError.
"""


import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from evsev2g.exi import ExiError, load_codec
from tests.exi.differential import difference
from tests.exi.instances import SMALL, HypothesisChooser, InstanceGenerator

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example,
                                           HealthCheck.data_too_large])


def message_strategy(codec, fragment_grammar=False):
    """
    Random valid documents of a codec (any global element as root, mostly
    ``V2G_Message``), or fragment roots of its fragment grammar
    (``fragment_grammar=None``, or ``"xmldsig"``), drawn from the schema model
    by :class:`~tests.exi.instances.InstanceGenerator` with the small profile.
    """
    if fragment_grammar is False:
        gset = codec.grammars
        roots = [[d] for d in gset.globals]
        favourite = [[d] for d in gset.globals if d.name == "V2G_Message"]
    else:
        gset = codec._fragment_engine(fragment_grammar).gset
        roots = [decls for _, decls in gset.fragment_elements]
        favourite = []

    @st.composite
    def build(draw):
        gen = InstanceGenerator(gset.schema, HypothesisChooser(draw), SMALL)
        pool = [r for r in roots if any(gen.producible(d) for d in r)]
        if favourite and draw(st.booleans()):
            pool = favourite
        return gen.fragment_root(draw(st.sampled_from(pool)))
    return build()


@pytest.mark.parametrize("name", ["appHandshake", "din70121", "iso15118-2"])
def test_random_valid_messages_round_trip(name):
    """
    ``decode(encode(m)) == m`` and ``from_xml(to_xml(m)) == m`` for random
    valid messages, with the Python types of values compared too.
    """
    codec = load_codec(name)

    @SETTINGS
    @given(message_strategy(codec))
    def check(msg):
        data = codec.encode(msg)
        assert difference(msg, codec.decode(data)) is None
        assert codec.encode(codec.decode(data)) == data
        assert difference(msg, codec.from_xml(codec.to_xml(msg))) is None
    check()


@pytest.mark.parametrize("grammar", [None, "xmldsig"])
def test_random_fragments_round_trip(grammar):
    """
    Random fragment roots of the ISO-2 MsgDef fragment grammar (including
    ``eMAID`` and its element fragment grammar) and of xmldsig alone
    (``SignedInfo`` …) round-trip through ``encode_fragment``/``decode_fragment``
    and through XML.
    """
    codec = load_codec("iso15118-2")

    @SETTINGS
    @given(message_strategy(codec, grammar))
    def check(msg):
        data = codec.encode_fragment(msg, grammar=grammar)
        assert difference(msg, codec.decode_fragment(data, grammar=grammar)) is None
        assert codec.encode_fragment(codec.decode_fragment(data, grammar=grammar), grammar=grammar) == data
        assert difference(msg, codec.from_xml(codec.to_xml(msg))) is None
    check()


def _only_exi_errors(codec, data):
    # How long an input may take is bench/fuzz.py's figure (slowest input,
    # inputs over 50 ms), not a wall-clock assertion here.
    try:
        codec.decode(data)
    except ExiError:
        pass


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
