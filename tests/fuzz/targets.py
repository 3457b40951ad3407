"""
Fuzz targets: each takes one input (``bytes``) and either returns a short
outcome text or raises one of its *documented* exceptions.  Anything else
it raises is a bug.  The tests of ``tests/fuzz`` run a bounded number of
inputs per target (hypothesis); ``bench/fuzz.py --inputs N`` runs them long.

Targets and what each may raise:

* ``v2gtp``: the V2GTP stream reader fed the input in chunks the input
  itself chooses: :class:`~evsev2g.errors.V2GTPError`.
* ``sdp``: the SDP request and response parsers:
  :class:`~evsev2g.errors.MalformedSDP`.
* ``exi-appHandshake``, ``exi-din70121``, ``exi-iso15118-2``: the EXI
  decoder of each schema; a tree that decodes must also encode and render
  as XML, and ``decode(complete=True)`` must accept exactly the trees that
  encode: :class:`~evsev2g.exi.ExiError`.
* ``xml-din70121``, ``xml-iso15118-2``: XML → message → EXI:
  :class:`~evsev2g.exi.ExiError`.
* ``machine-din70121``, ``machine-iso15118-2``: a whole session (the real
  :class:`~evsev2g.session.SessionFactory` with the simulated charger on a
  fake clock) fed a request sequence that the input reorders, drops,
  repeats, splices with requests from other captures, corrupts and spaces
  out in time: nothing may be raised and nothing logged as a failure
  (``log.failure``: an internal error, a response that cannot be encoded);
  every session must end and hand its charger back.

Seeds come from ``../shared/exi-vectors`` (golden and real-world vectors);
:func:`shared_vectors` returns ``[]`` when the folder is absent.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from evsev2g.errors import MalformedSDP, V2GTPError
from evsev2g.exi import ExiError, load_codec

ROOT = Path(__file__).resolve().parent.parent.parent


def shared_dir() -> Path:
    """``../shared`` beside the project (``EVSEV2G_SHARED`` overrides it)."""
    override = os.environ.get("EVSEV2G_SHARED")
    return Path(override) if override else ROOT.parent / "shared"


def shared_vectors() -> list[dict]:
    """Every golden and real-world vector, or ``[]`` without ``../shared``."""
    rows = []
    for name in ("golden.jsonl", "real-world.jsonl"):
        path = shared_dir() / "exi-vectors" / name
        if path.exists():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


class Reader:
    """Reads small numbers from the input, as a program; 0 once it runs out."""

    def __init__(self, data: bytes):
        self.data = data
        self.at = 0

    @property
    def left(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.at

    def byte(self) -> int:
        """The next byte, or 0."""
        if self.at >= len(self.data):
            return 0
        self.at += 1
        return self.data[self.at - 1]

    def below(self, bound: int) -> int:
        """A number in ``range(bound)`` (``bound`` ≥ 1) from one or two bytes."""
        value = self.byte() if bound <= 256 else (self.byte() << 8) | self.byte()
        return value % bound


EDGES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


def rss_mb() -> float:
    """The resident set size of this process, MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One to four random mutations of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        size = len(out)
        if kind == 0 and size:
            at = rng.randrange(size)
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and size:
            out[rng.randrange(size)] = rng.choice(EDGES)
        elif kind == 2 and size:
            out[rng.randrange(size)] = rng.randrange(256)
        elif kind == 3:
            at = rng.randint(0, size)
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 4 and size:
            at = rng.randrange(size)
            del out[at:at + rng.randint(1, 8)]
        elif kind == 5 and size:
            at = rng.randrange(size)
            piece = out[at:at + rng.randint(1, 16)]
            where = rng.randint(0, size)
            out[where:where] = piece
        elif kind == 6 and corpus:
            other = rng.choice(corpus)
            if other:
                cut_here, cut_there = rng.randint(0, size), rng.randrange(len(other))
                out = out[:cut_here] + bytearray(other[cut_there:])
        elif kind == 7 and size:
            del out[rng.randint(0, size - 1):]
        elif kind == 8:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(out[:4096])



class Target:
    """A fuzz target: :attr:`name`, :attr:`documented`, :meth:`seeds`, :meth:`run`."""

    name = ""
    documented: tuple = ()

    def seeds(self) -> list[bytes]:
        """Starting inputs (valid or nearly so)."""
        return []

    def run(self, data: bytes) -> str:
        """Run one input; returns an outcome text, raises only :attr:`documented`."""
        raise NotImplementedError


class V2GTPTarget(Target):
    """The V2GTP stream reader, the input split at points it chooses."""

    name = "v2gtp"
    documented = (V2GTPError,)

    def seeds(self):
        from evsev2g.v2gtp import build_frame

        return [bytes([3]) + build_frame(0x8001, b"\x80\x9a\x02") * 3, bytes([1]) + build_frame(0x8002, b"x" * 20)]

    def run(self, data):
        from evsev2g.v2gtp import STREAM_PAYLOAD_TYPES, V2GTPStreamParser

        if not data:
            return "empty"
        parser = V2GTPStreamParser(4096, STREAM_PAYLOAD_TYPES)
        step = data[0] % 16 + 1
        stream = data[1:]
        frames = 0
        for start in range(0, len(stream), step):
            for payload_type, payload in parser.feed(stream[start:start + step]):
                if not payload or len(payload) > 4096 or payload_type not in STREAM_PAYLOAD_TYPES:
                    raise AssertionError(f"frame out of bounds: type 0x{payload_type:04X}, {len(payload)} bytes")
                frames += 1
        return f"{frames} frames, mid frame {parser.mid_frame}"


class SDPTarget(Target):
    """The SDP request and response parsers."""

    name = "sdp"
    documented = (MalformedSDP,)

    def seeds(self):
        return [
            bytes.fromhex("01fe9000000000021000"),
            bytes.fromhex("01fe900100000014fe80000000000000000000000000000100ef0010"),
        ]

    def run(self, data):
        from evsev2g.sdp import build_request, build_response, parse_request, parse_response

        outcome = []
        for parse, build in ((parse_request, build_request), (parse_response, build_response)):
            try:
                parsed = parse(data)
            except MalformedSDP as error:
                outcome.append(type(error).__name__)
                continue
            if build(parsed) != data:
                raise AssertionError(f"{parsed} does not build back to the datagram")
            outcome.append("ok")
        return "/".join(outcome)


class SchemaTarget(Target):
    """A target of one schema's codec, named ``<prefix>-<schema>``; it may raise ExiError."""

    prefix = ""
    documented = (ExiError,)

    def __init__(self, schema: str):
        self.schema = schema
        self.name = f"{self.prefix}-{schema}"
        self.codec = load_codec(schema)


class DecoderTarget(SchemaTarget):
    """The EXI decoder of one schema; what decodes must encode and render as XML too."""

    prefix = "exi"

    def seeds(self):
        return [bytes.fromhex(v["exi_hex"]) for v in shared_vectors() if v["protocol"] == self.schema and "fragment" not in v]

    def run(self, data):
        message = self.codec.decode(data)
        name = message.name
        try:
            self.codec.encode(message)
        except ExiError:
            self._complete_agrees(data, False)
            raise
        self._complete_agrees(data, True)
        self.codec.to_xml(message)
        return name

    def _complete_agrees(self, data: bytes, encodes: bool) -> None:
        """``decode(complete=True)`` accepts exactly the trees that encode."""
        try:
            self.codec.decode(data, complete=True)
            complete = True
        except ExiError:
            complete = False
        if complete != encodes:
            raise AssertionError(f"decode(complete=True) {'accepts' if complete else 'refuses'} a tree that"
                                 f" {'does not encode' if not encodes else 'encodes'}")


class XMLTarget(SchemaTarget):
    """XML → message → EXI for one schema."""

    prefix = "xml"

    def seeds(self):
        return [v["xml"].encode() for v in shared_vectors() if v["protocol"] == self.schema and v.get("xml") and "fragment" not in v]

    def run(self, data):
        message = self.codec.from_xml(data)
        self.codec.encode(message)
        return message.name


#: Namespaces of the protocols in the application handshake.
NAMESPACES = {"din70121": "urn:din:70121:2012:MsgDef", "iso15118-2": "urn:iso:15118:2:2013:MsgDef"}

#: The request order of a DC session per protocol.
DC_ORDER = {
    "din70121": ["SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq", "ContractAuthenticationReq",
                 "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
                 "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"],
    "iso15118-2": ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq", "AuthorizationReq",
                   "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
                   "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"],
}


def _is_dc(message) -> bool:
    """Whether a captured request belongs to a DC session (its body mentions DC parameters or a DC mode)."""
    text = repr(message)
    return "DC_" in text and "AC_EV" not in text


def _stops(message) -> bool:
    """Whether a captured PowerDeliveryReq stops the energy transfer (ISO-2 ChargeProgress Stop, DIN ReadyToChargeState false)."""
    text = repr(message)
    return "'Stop'" in text or "ReadyToChargeState=False" in text


class MachineTarget(Target):
    """
    A whole session of one protocol fed a mutated request sequence.

    The input is read as a program (:class:`Reader`): each step takes one
    byte for the operation and more for its arguments.  Operations: swap
    two requests, drop one, repeat one, insert any captured request, use
    another capture of the same request, flip a byte of one encoded
    request, cut one short, wait up to 70 s before one.  Requests carry the
    session's SessionID once it has one (byte 0 of the input decides
    whether to keep the captured one instead), so the machine is driven
    past SessionSetup.
    """

    documented = ()

    def __init__(self, schema: str):
        from twisted.internet.task import Clock
        from twisted.logger import globalLogPublisher

        from evsev2g.config import load_config
        from evsev2g.session import build_session_factory
        from evsev2g.testing import FakeSessionLink

        self.schema = schema
        self.name = f"machine-{schema}"
        self.codec = load_codec(schema)
        self.handshake = load_codec("appHandshake")
        self.clock = Clock()
        overrides = ["device=lo", "simulator.auth_delay_ms=0", "simulator.cable_check_ms=0", "simulator.voltage_slew_rate=0", "simulator.current_slew_rate=0"]
        self.factory = build_session_factory(load_config(None, overrides), self.clock)
        self._link_class = FakeSessionLink
        self.failures: list[str] = []
        #: CPU seconds of the slowest single request (decode, machine, encode), and requests run
        self.slowest_request = 0.0
        self.requests_run = 0
        self._observer = self._watch
        globalLogPublisher.addObserver(self._observer)
        requests: dict[str, list] = {}
        for vector in shared_vectors():
            if vector["protocol"] == schema and vector["message"].endswith("Req") and "fragment" not in vector:
                requests.setdefault(vector["message"], []).append(self.codec.decode(bytes.fromhex(vector["exi_hex"])))
        for name, pool in requests.items():
            # DC captures first: the unmutated program is a DC session
            pool.sort(key=lambda message: 0 if _is_dc(message) else 1)
        self.requests = requests
        self.names = sorted(requests)
        self._stop_variant = next(
            (i for i, m in enumerate(requests.get("PowerDeliveryReq", [])) if _stops(m)), 0
        )
        self.handshake_request = self.handshake.encode(self._app_protocol_request())

    def _app_protocol_request(self):
        from evsev2g.exi import Message

        entry = Message("AppProtocol", ProtocolNamespace=NAMESPACES[self.schema], VersionNumberMajor=2,
                        VersionNumberMinor=0, SchemaID=1, Priority=1)
        return Message("supportedAppProtocolReq", AppProtocol=[entry])

    def figures(self) -> dict:
        """Per-request figures for the bench (an input is a whole session of up to 65 requests)."""
        return {"requests": self.requests_run, "slowest_request_cpu_ms": round(self.slowest_request * 1000, 2)}

    def close(self) -> None:
        """Stop watching the log."""
        from twisted.logger import globalLogPublisher

        globalLogPublisher.removeObserver(self._observer)

    def _watch(self, event) -> None:
        """Collect every ``log.failure`` (an internal error) while an input runs."""
        failure = event.get("log_failure")
        if failure is not None:
            from twisted.logger import formatEvent

            self.failures.append(f"{formatEvent(event)}: {failure.getErrorMessage()}")

    def seeds(self):
        return [b"", bytes([0, 0]), bytes([1, 7, 3, 40])]

    def _program(self, data: bytes):
        """The request sequence (names, variants, corruptions, waits) the input asks for."""
        reader = Reader(data)
        keep_ids = reader.byte() == 1
        steps = [[name, 0, None, None, 1.0] for name in DC_ORDER[self.schema] if name in self.requests]
        deliveries = [step for step in steps if step[0] == "PowerDeliveryReq"]
        if len(deliveries) > 1:
            deliveries[-1][1] = self._stop_variant
        while reader.left and len(steps) < 64:
            op = reader.byte() % 8
            if not steps and op != 3:
                continue
            at = reader.below(max(len(steps), 1))
            if op == 0:
                other = reader.below(len(steps))
                steps[at], steps[other] = steps[other], steps[at]
            elif op == 1:
                del steps[at]
            elif op == 2:
                steps.insert(at, list(steps[at]))
            elif op == 3:
                steps.insert(at, [self.names[reader.below(len(self.names))], reader.byte(), None, None, 1.0])
            elif op == 4:
                steps[at][1] = reader.byte()
            elif op == 5:
                steps[at][2] = (reader.below(1024), reader.byte() or 1)
            elif op == 6:
                steps[at][3] = reader.below(64)
            else:
                steps[at][4] = reader.below(71) * 1.0
        return keep_ids, steps

    def run(self, data):
        keep_ids, steps = self._program(data)
        self.failures = []
        factory, clock = self.factory, self.clock
        link = self._link_class(peer=("fe80::1%lo", 50000), lose_on_close=False)
        before = factory.finished
        session = factory.new_session(link)
        session.payload_received(0x8001, self.handshake_request)
        for name, variant, flip, cut, wait in steps:
            if session.ended:
                break
            clock.advance(wait)
            if session.ended:
                break
            pool = self.requests[name]
            message = pool[variant % len(pool)]
            session_id = getattr(session.machine, "session_id", None)
            if session_id is not None and not keep_ids:
                original = message.Header.SessionID
                message.Header.set("SessionID", session_id)
                try:
                    payload = self.codec.encode(message)
                finally:
                    message.Header.set("SessionID", original)
            else:
                payload = self.codec.encode(message)
            if flip is not None:
                position, mask = flip
                position %= len(payload)
                payload = payload[:position] + bytes([payload[position] ^ mask]) + payload[position + 1:]
            if cut is not None:
                payload = payload[:cut] or b"\x80"
            begin = time.thread_time()
            session.payload_received(0x8001, payload)
            self.slowest_request = max(self.slowest_request, time.thread_time() - begin)
            self.requests_run += 1
        ended = session.ended
        machine = session.machine
        state = getattr(getattr(machine, "state", None), "name", "no protocol")
        last = getattr(machine, "last_request", None)
        session.connection_lost("fuzz input over")
        clock.advance(120)
        if self.failures:
            raise AssertionError("; ".join(self.failures))
        if factory.finished != before + 1 or session in factory.sessions:
            raise AssertionError("the session did not end and hand its charger back")
        return f"{'closed' if ended else 'open'} in {state} after {last}, {len(link.sent)} answers"


def all_targets(shared: bool = True) -> list[Target]:
    """
    Every target, built (codecs loaded).

    :param shared: include the targets whose inputs need ``../shared``
        (the state machines are fed captured requests).
    """
    targets: list[Target] = [V2GTPTarget(), SDPTarget()]
    targets += [DecoderTarget(schema) for schema in ("appHandshake", "din70121", "iso15118-2")]
    targets += [XMLTarget(schema) for schema in ("din70121", "iso15118-2")]
    if shared:
        targets += [MachineTarget(schema) for schema in ("din70121", "iso15118-2")]
    return targets


TARGET_NAMES = [
    "v2gtp", "sdp", "exi-appHandshake", "exi-din70121", "exi-iso15118-2", "xml-din70121", "xml-iso15118-2",
    "machine-din70121", "machine-iso15118-2",
]


def make_target(name: str) -> Target:
    """:returns: the target called ``name`` (one of :data:`TARGET_NAMES`)."""
    if name == "v2gtp":
        return V2GTPTarget()
    if name == "sdp":
        return SDPTarget()
    kind, _, schema = name.partition("-")
    classes = {"exi": DecoderTarget, "xml": XMLTarget, "machine": MachineTarget}
    if kind not in classes or schema not in ("appHandshake", "din70121", "iso15118-2"):
        raise KeyError(f"no fuzz target {name!r} (known: {', '.join(TARGET_NAMES)})")
    return classes[kind](schema)
