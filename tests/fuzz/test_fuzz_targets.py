"""
The fuzz targets of :mod:`tests.fuzz.targets`, a bounded number of inputs
each (hypothesis drives the mutation of the seeds, or gives raw bytes):
every input ends in an outcome or a documented exception, nothing else.
``bench/fuzz.py --inputs N`` runs the same targets long.
"""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.fuzz.targets import TARGET_NAMES, make_target, mutate, shared_vectors

#: Inputs per target in the test run; the bench runs millions.
EXAMPLES = {"machine-din70121": 150, "machine-iso15118-2": 150}

_targets = {}


def target(name):
    """The target ``name``, built once per test run."""
    if name not in _targets:
        _targets[name] = make_target(name)
    return _targets[name]


@pytest.fixture(scope="module", autouse=True)
def stop_watching():
    """The state-machine targets watch the log; stop that after the module."""
    yield
    for built in _targets.values():
        close = getattr(built, "close", None)
        if close is not None:
            close()


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_target_raises_only_documented_exceptions(name, shared_dir):
    """Mutated seeds and raw bytes: each input gives an outcome or one of the target's documented exceptions."""
    built = target(name)
    seeds = built.seeds()
    assert seeds, f"{name} has no seeds"

    @settings(max_examples=EXAMPLES.get(name, 400), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False), st.booleans(), st.binary(max_size=200))
    def check(rng, raw, data):
        if not raw:
            data = mutate(rng, rng.choice(seeds), seeds)
        try:
            outcome = built.run(data)
        except built.documented:
            return
        assert isinstance(outcome, str)

    check()


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_every_seed_runs(name, shared_dir):
    """Every seed itself (valid captures, mostly) runs to an outcome or a documented exception."""
    built = target(name)
    outcomes = []
    for seed in built.seeds():
        try:
            outcomes.append(built.run(seed))
        except built.documented as error:
            outcomes.append(type(error).__name__)
    assert outcomes


@pytest.mark.parametrize("schema", ["din70121", "iso15118-2"])
def test_machine_target_unmutated_program_is_a_whole_session(schema, shared_dir):
    """The unmutated program answers every request of a DC session through SessionStop: the target drives the machine deep, not just to FAILED."""
    from tests.fuzz.targets import DC_ORDER

    outcome = target(f"machine-{schema}").run(b"")
    if schema == "iso15118-2":
        # the captured PowerDeliveryReq names a schedule our charger does not offer: FAILED_TariffSelectionInvalid
        assert "answers" in outcome and "after CableCheckReq" not in outcome, outcome
        return
    assert outcome == f"closed in STOPPED after SessionStopReq, {len(DC_ORDER[schema]) + 1} answers"


def test_decoder_seeds_decode(shared_dir):
    """The decoder targets' seeds are the captured vectors, and they decode."""
    assert len(shared_vectors()) > 100
    for schema in ("din70121", "iso15118-2"):
        built = target(f"exi-{schema}")
        assert all(built.run(seed) == "V2G_Message" for seed in built.seeds()[:50])


def test_regression_a_simple_typed_global_element_reads_like_any_message(shared_dir):
    """
    Found by the fuzzer: one flipped bit turned a DIN request into the
    global element DigestValue (simple content), whose Message had no shape,
    so ``get("Body")`` raised AttributeError inside the state machine.  It
    now reads as an element without children, and the session answers the
    way it answers any message that is not a request.
    """
    from evsev2g.exi import load_codec

    codec = load_codec("din70121")
    built = target("exi-din70121")
    data = bytearray(built.seeds()[0])
    data[1] ^= 174
    message = codec.decode(bytes(data))
    assert message.name == "DigestValue"
    assert message.get("Body") is None and message.keys() == []
    assert "answers" in target("machine-din70121").run(bytes.fromhex("3e65d1be439f5deb0c01d4"))


def test_regression_a_request_missing_mandatory_content_closes_as_undecodable(shared_dir, log_events):
    """
    Found by the fuzzer: one flipped bit ended EVTargetCurrent before its
    Value (non-strict EXI allows the early end), and the DIN machine failed
    on ``None × 10``.  The session now decodes requests with
    ``complete=True``: such a request is undecodable, the connection
    closes with a warning that names the missing child, and nothing is
    logged as an internal error.
    """
    from evsev2g.exi import ExiError, load_codec

    built = target("machine-din70121")
    message = built.requests["PreChargeReq"][0]
    codec = load_codec("din70121")
    data = bytearray(codec.encode(message))
    data[549 % len(data)] ^= 1
    assert codec.decode(bytes(data)).Body.PreChargeReq.EVTargetCurrent.get("Value") is None
    with pytest.raises(ExiError, match="missing mandatory child: expected Value"):
        codec.decode(bytes(data), complete=True)
    outcome = built.run(bytes.fromhex("cd25bc3e25"))
    assert "closed in PRE_CHARGING after CableCheckReq" in outcome or "closed" in outcome
    assert "undecodable EXI" in log_events.text() and "expected Value" in log_events.text()
    assert log_events.failures() == []


@pytest.mark.parametrize("xml", [
    b'<?xml version="1.0"?><!DOCTYPE V2G_Message [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b'<V2G_Message xmlns="urn:din:70121:2012:MsgDef">&b;</V2G_Message>',
    b'<!DOCTYPE V2G_Message SYSTEM "http://example.invalid/x.dtd"><V2G_Message xmlns="urn:din:70121:2012:MsgDef"/>',
    b'<V2G_Message xmlns="urn:din:70121:2012:MsgDef">&undeclared;</V2G_Message>',
])
def test_regression_xml_with_a_doctype_or_entities_is_refused(xml):
    """
    from_xml refuses any DOCTYPE and undeclared entities with ExiError.
    (It reads XML with expat, not lxml, since the xml targets of
    bench/fuzz.py showed lxml's never-freed name dictionary growing the
    process with every new element name.)
    """
    from evsev2g.exi import ExiError, load_codec

    with pytest.raises(ExiError, match="malformed XML"):
        load_codec("din70121").from_xml(xml)


def test_regression_an_unknown_xml_encoding_is_malformed_xml():
    """Found by the xml target: an unknown encoding in the XML declaration raised LookupError; it is ExiError now."""
    from evsev2g.exi import ExiError, load_codec

    with pytest.raises(ExiError, match="malformed XML"):
        load_codec("din70121").from_xml(b'<?xml version="1.0" encoding="TTF-8"?><V2G_Message/>')


def test_regression_ever_new_declared_encodings_leave_nothing_behind():
    """
    Found by the xml-iso15118-2 target at 1,000,000 inputs (RSS 28.3 → 31.6 MB):
    each unknown encoding name was looked up, and remembered, by Python's
    codec search; from_xml now refuses it before expat asks. The four
    encodings expat reads itself still read.
    """
    import encodings

    from evsev2g.exi import ExiError, load_codec

    codec = load_codec("appHandshake")
    xml = ('<?xml version="1.0" encoding="{}"?><ns:supportedAppProtocolReq xmlns:ns="urn:iso:15118:2:2010:AppProtocol">'
           "<AppProtocol><ProtocolNamespace>urn:din:70121:2012:MsgDef</ProtocolNamespace><VersionNumberMajor>2"
           "</VersionNumberMajor><VersionNumberMinor>0</VersionNumberMinor><SchemaID>1</SchemaID><Priority>1</Priority>"
           "</AppProtocol></ns:supportedAppProtocolReq>")
    remembered = len(encodings._cache)
    for index in range(200):
        with pytest.raises(ExiError, match="encoding 'x-fuzz-"):
            codec.from_xml(xml.format(f"x-fuzz-{index}").encode())
    assert len(encodings._cache) == remembered
    for name in ("UTF-8", "utf-8", "ISO-8859-1", "US-ASCII"):
        assert codec.from_xml(xml.format(name).encode()).name == "supportedAppProtocolReq"
    assert codec.from_xml(xml.format("UTF-16").encode("utf-16")).name == "supportedAppProtocolReq"
