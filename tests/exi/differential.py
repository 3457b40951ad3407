"""
Differential testing of evsev2g.exi against EXIficient.

For one random valid message ``m`` (see :mod:`tests.exi.instances`) a
:class:`Comparison` checks that

1. EXIficient's encoding of ``codec.to_xml(m)`` equals ``codec.encode(m)``
   (``encode_fragment`` for fragments), byte for byte, and
2. ``codec.decode`` of EXIficient's bytes equals ``m``;
3. (every fourth message) EXIficient and ``codec.from_xml`` both read an XML
   with other lexical forms of the same values as ``m``
   (:func:`lexical_variant`);

and, when the bytes differ, it also asks EXIficient to decode ours, to say
which side is wrong.  The one divergence accepted is documented at
:func:`empty_value_paths`.

Run it large from the worktree (prints counts, coverage and every
discrepancy)::

    python -m tests.exi.differential 20000            # per kind, seed 1
    python -m tests.exi.differential 20000 --seed 7 --kinds iso15118-2,xmldsig-fragment
"""

from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from evsev2g.exi import ExiError, Message, load_codec
from evsev2g.exi.codec import SCHEMA_SETS
from evsev2g.exi.values import representation
from evsev2g.exi.xsd import ComplexType
from tests.exi.instances import PROFILES, Coverage, InstanceGenerator, RandomChooser
from tests.exi.oracle import OracleError

__all__ = ["KINDS", "Kind", "Comparison", "Outcome", "difference", "empty_value_paths", "lexical_variant",
           "oracle_xsds", "run_kind"]

#: Elements whose EXI fragments ISO 15118-2 signs (their digests are over the fragment bytes).
SIGNED_ISO2 = ("AuthorizationReq", "MeteringReceiptReq", "CertificateInstallationReq", "CertificateUpdateReq",
               "ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID",
               "SalesTariff")


@dataclass(frozen=True)
class Kind:
    """
    One family of compared messages.

    :ivar name: label used in test ids and reports.
    :ivar codec: the codec's schema set.
    :ivar fragment: EXI fragments instead of documents.
    :ivar grammar: the fragment grammar (``None`` = the codec's set, ``"xmldsig"``).
    :ivar oracle_set: the oracle's schema set for the same grammar.
    :ivar favourites: root local names drawn more often (60 %).
    """

    name: str
    codec: str
    fragment: bool = False
    grammar: str | None = None
    oracle_set: str = ""
    favourites: tuple = ()


KINDS = (
    Kind("appHandshake", "appHandshake", oracle_set="appHandshake"),
    Kind("din70121", "din70121", oracle_set="din70121", favourites=("V2G_Message",)),
    Kind("iso15118-2", "iso15118-2", oracle_set="iso15118-2", favourites=("V2G_Message",)),
    Kind("iso15118-2-fragment", "iso15118-2", fragment=True, oracle_set="iso15118-2", favourites=SIGNED_ISO2),
    Kind("xmldsig-fragment", "iso15118-2", fragment=True, grammar="xmldsig", oracle_set="xmldsig",
         favourites=("SignedInfo",)),
    Kind("din70121-fragment", "din70121", fragment=True, oracle_set="din70121"),
)


def oracle_xsds(official: Path) -> dict:
    """
    :param official: the official schema folder (``../shared/xsd``).
    :returns: the oracle's ``{set name: entry XSD}``.
    """
    return {name: str(official / entry) for name, (entry,) in SCHEMA_SETS.items()}


# -- the accepted divergence ------------------------------------------------------------

def empty_value_paths(engine, msg: Message, path: str = "") -> list[str]:
    """
    Where ``msg`` holds an empty string or binary as the whole content of
    an element (``<ContractID/>``, an empty ``SignatureValue``).

    Accepted divergence: for such an element V2G codecs (libcbv2g, OpenV2G
    and evsev2g) write the declared ``CH`` event with the empty value, while
    EXIficient, seeing no character event at all, ends the element with a
    second-level ``EE`` (the golden vectors' README documents it for the DIN
    CertificateUpdateRes).  Both are valid EXI for the same XML; the test
    then checks that each side decodes the other's bytes to ``msg`` and that
    re-encoding EXIficient's bytes gives ours, instead of byte equality.

    :param engine: the codec engine of the grammar ``msg`` belongs to.
    :param msg: the message tree.
    :returns: element paths (empty when byte equality must hold).
    """
    t = _root_type(engine, msg)
    if t is None:       # element fragment grammar: untyped content, no simple value to be empty
        return []
    return _empty_in(engine, t, msg, f"/{msg.name}", [])


def _root_type(engine, msg: Message):
    gset = engine.gset
    qn = (msg.ns, msg.name)
    index = engine.frag_index.get(qn)
    decls = gset.fragment_elements[index][1] if index is not None else [gset.globals[engine.global_index[qn]]]
    return gset.fragment_type(decls)


def _child_types(engine, t: ComplexType) -> dict:
    g = engine.gset.grammar(t)
    return {alt.name: alt.type for leaf in g.leaves for alt in leaf.alternatives}


def _empty_in(engine, t, node, here: str, out: list) -> list:
    if not isinstance(t, ComplexType):
        value = node.value if isinstance(node, Message) else node
        if value in ("", b"") and representation(t).kind in ("string", "binary"):
            out.append(here)
        return out
    if t.content == "simple":
        if node.value in ("", b"") and representation(t.simple_type).kind in ("string", "binary"):
            out.append(here)
        return out
    types = _child_types(engine, t)
    for name, child in node.children:
        if name != "#text":
            _empty_in(engine, types[name], child, f"{here}/{name}", out)
    return out


# -- other lexical forms of the same message ------------------------------------------------

def lexical_variant(engine, msg: Message, rng) -> bytes:
    """
    The XML of ``msg`` with other valid lexical forms of its typed values:
    integers with a sign, leading zeros or surrounding whitespace, booleans
    as ``1``/``0``, lower-case hex, base64 broken into lines, enumeration
    values with surrounding whitespace in element content (strings are left
    alone: their whitespace is data).  EXIficient and ``from_xml`` must both read it as
    ``msg``.

    :param engine: the codec engine; :param msg: the message;
    :param rng: a :class:`random.Random`.
    :returns: XML bytes.
    """
    from lxml import etree

    from evsev2g.exi.xmlconv import message_to_xml
    root = etree.fromstring(message_to_xml(engine, msg, pretty=False))
    t = _root_type(engine, msg)
    if t is not None:
        _vary(engine, t, msg, root, rng)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _vary(engine, t, node, el, rng) -> None:
    if not isinstance(t, ComplexType):
        value = node.value if isinstance(node, Message) else node
        el.text = _variant(representation(t), value, el.text, rng)
        return
    for au in t.attributes:
        if au.name in node.attrs:
            key = f"{{{au.ns}}}{au.name}" if au.ns else au.name
            rep = representation(au.type)
            el.set(key, _variant(rep, node.attrs[au.name], el.get(key), rng, attribute=True))
    if t.content == "simple":
        el.text = _variant(representation(t.simple_type), node.value, el.text, rng)
        return
    types = _child_types(engine, t)
    kids = [(name, child) for name, child in node.children if name != "#text"]
    for (name, child), sub in zip(kids, el):
        _vary(engine, types[name], child, sub, rng)


def _variant(rep, value, text, rng, attribute: bool = False) -> str:
    kind = rep.kind
    if text is None or text == "" or kind not in ("nbit", "uint", "int", "bool", "binary", "enum"):
        return text
    if kind == "enum" and attribute:
        # string enumerations keep whitespace (xs:string); EXIficient trims element text but
        # codes " OK " in an attribute as an invalid value (AT(qname) untyped, a deviation)
        return text
    pad = rng.choice([" ", "\n ", "\t", "  \n"])
    if kind in ("nbit", "uint", "int"):
        digits = str(abs(value)).rjust(rng.randint(1, 4) + len(str(abs(value))), "0")
        sign = "-" if value < 0 else rng.choice(["", "+"])
        return rng.choice([f"{sign}{digits}", f"{pad}{value}{pad}", f"{pad}{sign}{digits}"])
    if kind == "bool":
        return rng.choice(["1" if value else "0", f"{pad}{text}{pad}"])
    if kind == "binary" and rep.hex:
        return rng.choice([text.lower(), f"{pad}{text}{pad}"])
    if kind == "binary":
        lines = [text[i:i + 8] for i in range(0, len(text), 8)]
        return pad + "\n".join(lines) + pad
    return f"{pad}{text}{pad}"


# -- one comparison ------------------------------------------------------------------------

@dataclass
class Outcome:
    """
    The result of comparing one message.

    :ivar equal: the two encodings were byte-identical.
    :ivar accepted: the bytes differ only by the accepted divergence.
    :ivar problems: ``(category, detail)`` pairs; empty means agreement.
    """

    equal: bool = False
    accepted: bool = False
    problems: list = field(default_factory=list)


class Comparison:
    """Compares evsev2g and EXIficient on the messages of one :class:`Kind`."""

    def __init__(self, kind: Kind, oracle) -> None:
        """:param kind: the :class:`Kind`; :param oracle: a running :class:`~tests.exi.oracle.Oracle`."""
        self.kind = kind
        self.oracle = oracle
        self.codec = load_codec(kind.codec)
        self.engine = self.codec._fragment_engine(kind.grammar) if kind.fragment else self.codec._engine

    def ours(self, msg: Message) -> bytes:
        """Our encoding of ``msg`` for this kind."""
        if self.kind.fragment:
            return self.codec.encode_fragment(msg, grammar=self.kind.grammar)
        return self.codec.encode(msg)

    def decode(self, data: bytes) -> Message:
        """Our decoding of ``data`` for this kind."""
        if self.kind.fragment:
            return self.codec.decode_fragment(data, grammar=self.kind.grammar)
        return self.codec.decode(data)

    def to_xml(self, msg: Message) -> bytes:
        """The XML EXIficient is given (no layout whitespace)."""
        from evsev2g.exi.xmlconv import message_to_xml
        return message_to_xml(self.engine, msg, pretty=False)

    def from_xml(self, xml: bytes) -> Message:
        """Parse XML that EXIficient wrote."""
        from evsev2g.exi.xmlconv import xml_to_message
        return xml_to_message(self.engine, xml)

    def compare(self, msg: Message, variant_rng=None) -> Outcome:
        """
        Compare the two codecs on ``msg``.

        :param variant_rng: when given, also check that EXIficient and
            ``from_xml`` read a :func:`lexical_variant` of the XML as ``msg``.
        :returns: an :class:`Outcome`.
        """
        out = Outcome()
        try:
            xml = self.to_xml(msg)
            ours = self.ours(msg)
        except ExiError as exc:
            out.problems.append(("evsev2g refuses a valid message", str(exc)))
            return out
        try:
            theirs = self.oracle.encode(self.kind.oracle_set, xml, self.kind.fragment)
        except OracleError as exc:
            out.problems.append(("EXIficient cannot encode", str(exc)[:300]))
            theirs = None
        if theirs is not None:
            try:
                decoded = self.decode(theirs)
            except ExiError as exc:
                out.problems.append(("evsev2g cannot decode EXIficient's bytes", str(exc)))
            else:
                diff = difference(msg, decoded)
                if diff:
                    out.problems.append(("evsev2g decodes EXIficient's bytes to another message", diff))
            out.equal = theirs == ours
        if not out.equal:
            self._diverged(msg, ours, theirs, out)
        if variant_rng is not None and theirs is not None:
            self._variant(msg, theirs, variant_rng, out)
        return out

    def _variant(self, msg: Message, theirs: bytes, rng, out: Outcome) -> None:
        xml = lexical_variant(self.engine, msg, rng)
        try:
            diff = difference(msg, self.from_xml(xml))
            if diff:
                out.problems.append(("from_xml reads another lexical form as another message", diff))
        except ExiError as exc:
            out.problems.append(("from_xml refuses another lexical form", f"{exc}\n{xml[:1500]!r}"))
        try:
            data = self.oracle.encode(self.kind.oracle_set, xml, self.kind.fragment)
            if data != theirs:
                try:
                    what = difference(msg, self.decode(data))
                except ExiError as exc:
                    what = f"(undecodable: {exc})"
                out.problems.append(("EXIficient reads another lexical form differently", what))
        except OracleError as exc:
            out.problems.append(("EXIficient refuses another lexical form", str(exc)[:300]))

    def _diverged(self, msg: Message, ours: bytes, theirs: bytes | None, out: Outcome) -> None:
        try:
            back = self.from_xml(self.oracle.decode(self.kind.oracle_set, ours, self.kind.fragment))
            theirs_of_ours = difference(msg, back)
        except (OracleError, ExiError) as exc:
            theirs_of_ours = f"fails: {str(exc)[:300]}"
        if theirs is None:
            if theirs_of_ours:
                out.problems.append(("EXIficient does not decode our bytes to the message", theirs_of_ours))
            return
        empties = empty_value_paths(self.engine, msg)
        if empties and not out.problems and theirs_of_ours is None:
            try:
                reencoded = self.ours(self.decode(theirs))
            except ExiError as exc:
                reencoded = str(exc)
            if reencoded == ours:
                out.accepted = True
                return
        detail = f"ours {ours.hex()[:160]}\ntheirs {theirs.hex()[:160]}"
        if theirs_of_ours is not None:
            detail += f"\nEXIficient on our bytes: {theirs_of_ours}"
        if empties:
            detail += f"\n(empty values at {', '.join(empties[:3])})"
        out.problems.append(("encodings differ", detail))


def difference(a, b, path: str = "") -> str | None:
    """
    Where two message trees differ, strictly: besides ``==`` the Python types
    of values must match (``True`` is not ``1``, ``b""`` is not ``""``).

    :returns: a description of the first difference, or ``None``.
    """
    if isinstance(a, Message) and isinstance(b, Message):
        here = f"{path}/{a.name}"
        if a.name != b.name:
            return f"{path}: element {a.name!r} vs {b.name!r}"
        if a.ns is not None and b.ns is not None and a.ns != b.ns:
            return f"{here}: namespace {a.ns!r} vs {b.ns!r}"
        if sorted(a.attrs) != sorted(b.attrs):
            return f"{here}: attributes {sorted(a.attrs)} vs {sorted(b.attrs)}"
        for key in a.attrs:
            diff = difference(a.attrs[key], b.attrs[key], f"{here}@{key}")
            if diff:
                return diff
        diff = difference(a.value, b.value, f"{here}#value")
        if diff:
            return diff
        if [k for k, _ in a.children] != [k for k, _ in b.children]:
            return f"{here}: children {[k for k, _ in a.children][:12]} vs {[k for k, _ in b.children][:12]}"
        for (_, va), (_, vb) in zip(a.children, b.children):
            diff = difference(va, vb, here)
            if diff:
                return diff
        return None
    if type(a) is not type(b) or a != b:
        return f"{path}: {a!r:.120} ({type(a).__name__}) vs {b!r:.120} ({type(b).__name__})"
    return None


# -- runs ---------------------------------------------------------------------------------

class Sampler:
    """Draws the messages of one :class:`Kind` from a seed."""

    def __init__(self, comparison: Comparison, seed) -> None:
        """:param comparison: whose kind and grammar to draw for; :param seed: the RNG seed."""
        self.kind = comparison.kind
        gset = comparison.engine.gset
        self.chooser = RandomChooser(seed)
        self.gen = InstanceGenerator(gset.schema, self.chooser)
        if self.kind.fragment:
            roots = [(qn, decls) for qn, decls in gset.fragment_elements
                     if any(self.gen.producible(d) for d in decls)]
        else:
            roots = [(d.qname, [d]) for d in gset.globals if self.gen.producible(d)]
        self.roots = roots
        self.favourites = [r for r in roots if r[0][1] in self.kind.favourites]
        self.weights = [w for _, w in PROFILES]

    def draw(self) -> tuple[Message, str]:
        """:returns: a message and the name of the profile it was drawn with."""
        rng = self.chooser.rng
        profile = rng.choices([p for p, _ in PROFILES], self.weights)[0]
        pool = self.favourites if self.favourites and rng.random() < (0.85 if len(self.favourites) == 1
                                                                      else 0.6) else self.roots
        qn, decls = pool[rng.randrange(len(pool))]
        msg = self.gen.fragment_root(decls, profile)
        return msg, _profile_name(profile)


def _profile_name(profile) -> str:
    from tests.exi import instances
    for name in ("TYPICAL", "FULL", "MINIMAL", "EXTREME", "SMALL"):
        if getattr(instances, name) == profile:
            return name
    return "custom"


@dataclass
class Report:
    """
    Counts of one run.

    :ivar kind: the :class:`Kind`'s name.
    :ivar compared: messages compared.
    :ivar equal: byte-identical encodings.
    :ivar accepted: differing only by the accepted empty-value divergence.
    :ivar problems: ``[(category, detail, index, profile, xml)]``.
    :ivar seconds: wall time.
    :ivar roots: how often each root element was drawn.
    :ivar missing: schema constructs no message used (``{key: label}``).
    :ivar constructs: ``{(construct kind, covered): count}``.
    """

    kind: str
    compared: int = 0
    equal: int = 0
    accepted: int = 0
    problems: list = field(default_factory=list)
    seconds: float = 0.0
    roots: collections.Counter = field(default_factory=collections.Counter)
    missing: dict = field(default_factory=dict)
    constructs: collections.Counter = field(default_factory=collections.Counter)

    def summary(self) -> str:
        """A one-paragraph text of the counts and problem categories."""
        cats = collections.Counter(p[0] for p in self.problems)
        lines = [f"{self.kind}: {self.compared} compared, {self.equal} byte-equal, {self.accepted} accepted "
                 f"divergences (empty value), {len(self.problems)} problems in {self.seconds:.1f} s"]
        lines += [f"  {n} x {cat}" for cat, n in cats.most_common()]
        kinds = sorted({k for k, _ in self.constructs})
        if kinds:
            lines.append("  covered: " + ", ".join(
                f"{k} {self.constructs[(k, True)]}/{self.constructs[(k, True)] + self.constructs[(k, False)]}"
                for k in kinds))
        return "\n".join(lines)


def run_kind(kind: Kind, oracle, count: int, seed, keep_xml: int = 5) -> Report:
    """
    Compare ``count`` random messages of one kind.

    :param kind: the :class:`Kind`; :param oracle: the running oracle.
    :param count: messages to compare; :param seed: the RNG seed.
    :param keep_xml: how many problem reports keep the message's XML.
    :returns: the :class:`Report`.
    """
    comparison = Comparison(kind, oracle)
    sampler = Sampler(comparison, f"{kind.name}:{seed}")
    report = Report(kind.name)
    start = time.perf_counter()
    for i in range(count):
        msg, profile = sampler.draw()
        report.roots[msg.name] += 1
        outcome = comparison.compare(msg, sampler.chooser.rng if i % 4 == 0 else None)
        report.compared += 1
        report.equal += outcome.equal
        report.accepted += outcome.accepted
        for category, detail in outcome.problems:
            xml = comparison.to_xml(msg).decode("utf-8", "replace") if len(report.problems) < keep_xml else ""
            report.problems.append((category, detail, i, profile, xml))
    report.seconds = time.perf_counter() - start
    universe = Coverage.universe(sampler.gen)
    seen = sampler.gen.coverage.seen
    for key in universe:
        report.constructs[(key[0], key in seen)] += 1
    report.missing = {k: v for k, v in universe.items() if k not in seen}
    return report


def main(argv: list[str]) -> int:
    """Command line for large local runs (see the module docstring)."""
    import argparse

    from tests.conftest import shared_path
    from tests.exi.oracle import start_oracle

    ap = argparse.ArgumentParser(prog="python -m tests.exi.differential")
    ap.add_argument("count", type=int, help="messages per kind")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--kinds", default=",".join(k.name for k in KINDS))
    ap.add_argument("--show", type=int, default=3, help="problems shown per category")
    args = ap.parse_args(argv)
    oracle = start_oracle(oracle_xsds(shared_path() / "xsd"))
    failed = 0
    try:
        for kind in KINDS:
            if kind.name not in args.kinds.split(","):
                continue
            report = run_kind(kind, oracle, args.count, args.seed, keep_xml=1000)
            print(report.summary(), flush=True)
            print(f"  roots: {len(report.roots)} distinct", flush=True)
            for label in list(report.missing.values())[:args.show * 10]:
                print(f"  not covered: {label}")
            shown = collections.Counter()
            for category, detail, index, profile, xml in report.problems:
                shown[category] += 1
                if shown[category] <= args.show:
                    print(f"--- {category} (message {index}, {profile})\n{detail}\n{xml[:3000]}\n",
                          flush=True)
            failed += len(report.problems)
    finally:
        oracle.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
