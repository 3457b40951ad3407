"""
The EXI codec: documents and fragments of one schema set.

Use::

    from evsev2g.exi import load_codec, ExiError
    codec = load_codec("iso15118-2")      # "appHandshake" | "din70121" | "iso15118-2"
    msg = codec.decode(data)              # bytes -> Message
    data = codec.encode(msg)              # Message -> bytes
    xml = codec.to_xml(msg)               # Message -> XML bytes
    msg = codec.from_xml(xml)             # XML bytes -> Message

Options are those of V2G (schema-informed, non-strict, nothing preserved,
valuePartitionCapacity 0, bit-packed, header byte 0x80).  A codec is built
once per schema set and process (the XSDs are read, the grammars built and
specialised Python compiled); :func:`load_codec` caches it.

Decoding stops at the end of the document: bytes after it (Tesla sends a
trailing 0x00) are ignored.  Every problem with the input raises
:class:`~evsev2g.exi.errors.ExiError` with the bit offset and the grammar
state, within the bounds of :class:`~evsev2g.exi.runtime.Limits`.
"""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path

from evsev2g.exi import cache
from evsev2g.exi.bits import BitReader, BitWriter, to_bytes
from evsev2g.exi.errors import ExiError, LimitExceeded
from evsev2g.exi.grammar import GrammarSet, build_grammars, code_width
from evsev2g.exi.message import Message, Shape, decoded_node
from evsev2g.exi.packed_code import LazyFunction
from evsev2g.exi.runtime import (DecodeContext, Limits, failed, runtime_namespace,
                                 simple_child, simple_write)
from evsev2g.exi.values import read_chars, representation
from evsev2g.exi.xsd import ComplexType, load_schema_set

__all__ = ["Codec", "CacheWarning", "load_codec", "prepare", "SCHEMA_SETS", "SCHEMA_DIR", "Limits", "EXI_HEADER"]

#: Where the project's schema files live.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "xsd"

#: Entry files of each schema set, relative to :data:`SCHEMA_DIR`.
SCHEMA_SETS = {
    "appHandshake": ("appHandshake/V2G_CI_AppProtocol.xsd",),
    "din70121": ("din70121/V2G_CI_MsgDef.xsd",),
    "iso15118-2": ("iso15118-2/V2G_CI_MsgDef.xsd",),
    "xmldsig": ("iso15118-2/xmldsig-core-schema.xsd",),
}

#: The separate fragment grammars a schema set's signatures use (:meth:`Codec.decode_fragment`).
_FRAGMENT_SETS = {"iso15118-2": ("xmldsig",)}

#: The one-byte EXI header of V2G: no cookie, no options, version 1.
EXI_HEADER = 0x80

#: The shape of an element of simple type (no children, nothing repeated).
_SIMPLE_SHAPE = Shape()

_CACHE: dict = {}
_LOCK = threading.Lock()


class CacheWarning(RuntimeWarning):
    """A codec could not be built in a child process for the cache, so it was built in this one."""


class _Engine:
    """Grammars plus the compiled functions of one schema set."""

    def __init__(self, name: str, files: list[Path], limits: Limits) -> None:
        self.name = name
        self.limits = limits
        digest = cache.key(name, files)
        saved = cache.load(name, digest)
        if saved is None and cache.usable():
            problem = cache.build_elsewhere([(name, files, digest)]).get(name)
            saved = cache.load(name, digest)
            if saved is None:
                problem = problem or "the cache entry built in a child process cannot be read"
                warnings.warn(f"EXI codec {name}: {problem}; building it in this process", CacheWarning, stacklevel=2)
        if saved is None:
            gset, consts, functions, code = _build(name, files)
            if cache.key(name, files) == digest:  # a file changed meanwhile: never save under the old key
                cache.save(name, digest, gset, consts, functions, code)
        else:
            gset, consts, functions, code = saved
        self.gset: GrammarSet = gset
        ns = runtime_namespace(limits)
        ns.update(consts)
        cache.define(code, ns)
        #: the generated decoder and encoder of each complex type, by ``id(ComplexType)``
        self.decoders = {id(t): ns[d] for d, e, t in functions}
        self.encoders = {id(t): ns[e] for d, e, t in functions}
        for table in (self.decoders, self.encoders):
            for key, function in table.items():
                if isinstance(function, LazyFunction):  # replaced by the function on its first call
                    function.home(table, key)
        gset = self.gset
        self.global_index = {d.qname: i for i, d in enumerate(gset.globals)}
        self.frag_index = {qn: i for i, (qn, _) in enumerate(gset.fragment_elements)}
        self.global_by_local: dict = {}
        for d in gset.globals:
            self.global_by_local.setdefault(d.name, []).append(d.qname)
        self.frag_by_local: dict = {}
        for qn, _ in gset.fragment_elements:
            self.frag_by_local.setdefault(qn[1], []).append(qn)
        self._element_fragment = None

    @property
    def element_fragment(self) -> "ElementFragmentGrammar":  # noqa: F821 - imported on first use
        """The element fragment grammar (built on first use: signatures, Plug & Charge)."""
        if self._element_fragment is None:
            from evsev2g.exi.fragment import ElementFragmentGrammar

            self._element_fragment = ElementFragmentGrammar(self.gset)
        return self._element_fragment

    # -- shared element paths -----------------------------------------------------

    def decode_typed(self, t, name: str, ns: str, v: int, n: int, p: int, x: DecodeContext):
        if isinstance(t, ComplexType):
            return self.decoders[id(t)](v, n, p, x, name, ns)
        value, p = simple_child(v, n, p, x, representation(t), (ns, name))
        return decoded_node(name, ns, [], {}, value, _SIMPLE_SHAPE), p

    def encode_typed(self, t, node, acc: int, nb: int) -> tuple[int, int]:
        if isinstance(t, ComplexType):
            return self.encoders[id(t)](node, acc, nb)
        value = node.value if isinstance(node, Message) else node
        name = node.name if isinstance(node, Message) else "?"
        return simple_write(acc, nb, representation(t), value, name)

    def read_qname(self, r: BitReader) -> str:
        """Read a qname (§7.1.7 with the §7.3 partitions), for diagnostics."""
        tables = self.gset.strings
        idx = r.bits(code_width(len(tables.uris) + 1))
        if idx == 0:
            length = r.uint()
            uri, r.p = read_chars(r.v, r.n, r.p, length, self.limits.max_string)
        elif idx - 1 < len(tables.uris):
            uri = tables.uris[idx - 1]
        else:
            raise ExiError("URI compact id out of range", bit=r.p)
        length = r.uint()
        if length == 0:
            names = tables.local_names.get(uri, [])
            k = r.bits(code_width(len(names)))
            if k >= len(names):
                raise ExiError("local-name compact id out of range", bit=r.p)
            local = names[k]
        else:
            local, r.p = read_chars(r.v, r.n, r.p, length - 1, self.limits.max_string)
        return f"{{{uri}}}{local}" if uri else local

    def deviation(self, r: BitReader, where: str) -> ExiError:
        start = r.p
        try:
            name = self.read_qname(r)
        except ExiError:
            name = "(unreadable qname)"
        return ExiError(f"{where}: element {name} is not declared in schema set {self.name} "
                        "(SE(*) schema deviation, e.g. a wrong namespace); not supported",
                        bit=start)


def _build(name: str, files: list[Path]):
    """
    Read the XSDs, build the grammars, generate and compile the code.

    The generated module is compiled one top-level definition at a time:
    the compiler's peak memory follows the largest function rather than
    the whole module (about 30 MB less per schema set).

    :returns: ``(gset, consts, functions, code)``: the grammar set, the
        constants the code refers to, ``(decoder name, encoder name,
        ComplexType)`` per type, and the code (:func:`~evsev2g.exi.cache.compact`)
        to run in order with :func:`~evsev2g.exi.cache.define`.
    """
    from evsev2g.exi.codegen import function_name, generate  # only on a cache miss

    gset = build_grammars(load_schema_set(name, files))
    source, consts, gen = generate(gset)
    filename = f"<evsev2g.exi generated code for {name}>"
    code, line = [], 0
    for chunk in _TOP_LEVEL.split(source):
        # moved to its place: tracebacks' line numbers are those of the whole source
        code.append(cache.at_line(compile(chunk, filename, "exec"), line))
        line += chunk.count("\n") + 1
    functions = [(function_name(g, "d"), function_name(g, "e"), g.type) for g in gen.types]
    return gset, consts, functions, cache.compact(code)


#: Where the generated source may be cut: before each unindented line.
_TOP_LEVEL = re.compile(r"\n(?=[^\s#])")


def _stream(data, limits: Limits) -> tuple[int, int]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ExiError(f"EXI data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"EXI stream of {len(data)} bytes exceeds the limit of {limits.max_bytes}")
    if not data:
        raise ExiError("empty EXI stream", bit=0)
    if data[:4] == b"$EXI":
        raise ExiError("EXI cookie present; V2G streams start with the header byte 0x80", bit=0)
    if data[0] != EXI_HEADER:
        raise ExiError(f"EXI header byte is {data[0]:#04x}, V2G needs 0x80 "
                       "(no options, final version 1)", bit=0)
    return int.from_bytes(data, "big"), len(data) * 8


class Codec:
    """
    Schema-informed EXI for one V2G schema set.

    :ivar name: the schema set (``"appHandshake"``, ``"din70121"``,
        ``"iso15118-2"``).
    :ivar limits: the :class:`~evsev2g.exi.runtime.Limits` in force.
    """

    def __init__(self, name: str, schema_dir: Path | None = None, limits: Limits | None = None) -> None:
        """
        :param name: a key of :data:`SCHEMA_SETS`.
        :param schema_dir: where the schema folders are (default: the
            project's own :data:`SCHEMA_DIR`).
        :param limits: decode limits (default :class:`Limits`).
        :raises ExiError: for an unknown set or unusable schema files.
        """
        if name not in SCHEMA_SETS:
            raise ExiError(f"unknown schema set {name!r} (known: {', '.join(SCHEMA_SETS)})")
        self.name = name
        self.limits = limits or Limits()
        self.schema_dir = Path(schema_dir) if schema_dir else SCHEMA_DIR
        self._engine = _Engine(name, [self.schema_dir / f for f in SCHEMA_SETS[name]], self.limits)
        self._xmldsig: _Engine | None = None

    def __repr__(self) -> str:
        return f"<Codec {self.name}>"

    @property
    def grammars(self) -> GrammarSet:
        """The :class:`~evsev2g.exi.grammar.GrammarSet` of this codec's schema set."""
        return self._engine.gset

    def _fragment_engine(self, grammar: str | None) -> _Engine:
        if grammar in (None, "schema", "msgdef", self.name):
            return self._engine
        if grammar == "xmldsig":
            if self._xmldsig is None:
                folder = self.name if self.name != "appHandshake" else "iso15118-2"
                path = self.schema_dir / folder / "xmldsig-core-schema.xsd"
                if not path.exists():
                    path = self.schema_dir / SCHEMA_SETS["xmldsig"][0]
                self._xmldsig = _Engine("xmldsig", [path], self.limits)
            return self._xmldsig
        raise ExiError(f"unknown fragment grammar {grammar!r} (use None for the schema set, or 'xmldsig')")

    # -- documents --------------------------------------------------------------

    def decode(self, data: bytes, complete: bool = False) -> Message:
        """
        Decode an EXI document (the V2GTP payload).

        V2G's EXI is non-strict, so a stream may end an element before its
        mandatory children (an undeclared EE is a legal deviation): such a
        tree decodes, and a program reading it finds ``None`` where the
        schema promises a value.  ``complete=True`` refuses it, and values
        that break a facet the stream cannot rule out (a length, digits):
        the decoder marks a tree suspect where it accepted an early end or
        such a value, and only a suspect tree goes through the check
        :meth:`encode` makes, which names the problem.  The session decodes
        every request so; a well-formed request costs no second pass.

        :param data: the EXI bytes, starting with the header byte 0x80.
        :param complete: also require every mandatory child and attribute.
        :returns: the root element as a :class:`Message`; nodes carry
            ``ns`` and their type's ``Shape``.
        :raises ExiError: for anything the schema does not allow, truncated
            data, values out of range or beyond the limits; with
            ``complete``, for missing mandatory content too.
        """
        x = DecodeContext(self.limits)
        node = self._decode(data, x)
        if complete and x.suspect:
            self.encode(node)
        return node

    def _decode(self, data: bytes, x: DecodeContext) -> Message:
        """:meth:`decode` without the completeness check."""
        eng = self._engine
        v, n = _stream(data, self.limits)
        p = 8
        try:
            w = eng.gset.doc_width
            code = (v >> (n - p - w)) & ((1 << w) - 1)
            p += w
            if code < len(eng.gset.globals):
                decl = eng.gset.globals[code]
                node, p = eng.decode_typed(decl.type, decl.name, decl.ns, v, n, p, x)
                return node
            if code == len(eng.gset.globals):
                raise eng.deviation(BitReader(v, n, p), "DocContent")
            raise ExiError("DocContent event code selects no production", bit=p - w, context="DocContent")
        except ExiError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes ExiError
            raise failed(exc, p, "DocContent") from None

    def encode(self, msg: Message) -> bytes:
        """
        Encode a message tree as an EXI document.

        Children of sequences may be given in any order; they are written in
        schema order.  The tree is validated on the way (unknown or missing
        children, values outside their types).

        :param msg: the root element, e.g. ``Message("V2G_Message", …)``.
        :returns: the EXI bytes with the header byte 0x80.
        :raises ExiError: naming the path of the first problem.
        """
        eng = self._engine
        decl = self._global(eng, msg)
        acc, nb = EXI_HEADER, 8
        acc = (acc << eng.gset.doc_width) | eng.global_index[decl.qname]
        nb += eng.gset.doc_width
        try:
            acc, nb = eng.encode_typed(decl.type, msg, acc, nb)
        except ExiError:
            raise
        except (TypeError, AttributeError, ValueError) as exc:
            raise ExiError(f"cannot encode: {exc}", path=[getattr(msg, "name", "?")]) from None
        return to_bytes(acc, nb)

    def _global(self, eng: _Engine, msg):
        if not isinstance(msg, Message):
            raise ExiError(f"expected a Message, got {type(msg).__name__}")
        qnames = [(msg.ns, msg.name)] if msg.ns is not None else eng.global_by_local.get(msg.name, [])
        qnames = [q for q in qnames if q in eng.global_index]
        if len(qnames) != 1:
            raise ExiError(f"{msg.name!r} is not a global element of {eng.name}"
                           if not qnames else f"{msg.name!r} is ambiguous; set ns", path=[msg.name])
        return eng.gset.globals[eng.global_index[qnames[0]]]

    # -- fragments ----------------------------------------------------------------

    def decode_fragment(self, data: bytes, grammar: str | None = None, multiple: bool = False):
        """
        Decode an EXI fragment (fragment = true), as signature digests use.

        ``decode_fragment(data, grammar=None, multiple=False)``

        :param data: the EXI bytes (header 0x80, FragmentContent codes, ED).
        :param grammar: ``None`` for this schema set's fragment grammar (the
            ISO 15118-2 ``V2G_CI_MsgDef`` set for referenced elements), or
            ``"xmldsig"`` for the grammar of xmldsig-core-schema.xsd alone
            (``SignedInfo``).
        :param multiple: return a list of every root element instead of the
            single one.
        :returns: the fragment's root :class:`Message` (or a list).
        :raises ExiError: on bad input, or when the fragment does not have
            exactly one root and ``multiple`` is false.
        """
        eng = self._fragment_engine(grammar)
        gset = eng.gset
        v, n = _stream(data, self.limits)
        r = BitReader(v, n, 8)
        x = DecodeContext(self.limits)
        roots = []
        count = len(gset.fragment_elements)
        try:
            while True:
                start = r.p
                code = r.bits(gset.fragment_width)
                if code < count:
                    roots.append(self._fragment_element(eng, r, x, code))
                elif code == count:
                    raise eng.deviation(r, "FragmentContent")
                elif code == count + 1:
                    break
                else:
                    raise ExiError("FragmentContent event code selects no production", bit=start,
                                   context="FragmentContent")
                if len(roots) > self.limits.max_repeat:
                    raise LimitExceeded("too many fragment roots", bit=r.p)
        except ExiError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise failed(exc, r.p, "FragmentContent") from None
        if multiple:
            return roots
        if len(roots) != 1:
            raise ExiError(f"fragment has {len(roots)} root elements; pass multiple=True")
        return roots[0]

    def _fragment_element(self, eng: _Engine, r: BitReader, x: DecodeContext, index: int) -> Message:
        qn, decls = eng.gset.fragment_elements[index]
        t = eng.gset.fragment_type(decls)
        if t is None:
            def child(reader, i):
                node = self._fragment_element(eng, reader, x, i)
                ctype = eng.gset.fragment_type(eng.gset.fragment_elements[i][1])
                return (node.name, node.value if ctype is not None and not isinstance(ctype, ComplexType)
                        else node)
            return eng.element_fragment.decode(r, x, qn, child)
        node, r.p = eng.decode_typed(t, qn[1], qn[0], r.v, r.n, r.p, x)
        return node

    def encode_fragment(self, msg: Message, grammar: str | None = None) -> bytes:
        """
        Encode one element as an EXI fragment (for signature digests).

        ``encode_fragment(msg, grammar=None)``

        :param msg: the element, e.g. ``AuthorizationReq`` with its ``Id``
            attribute, or ``SignedInfo``; set ``msg.ns`` when its local name
            is declared in more than one namespace.
        :param grammar: ``None`` for this schema set's fragment grammar, or
            ``"xmldsig"`` for xmldsig-core-schema.xsd alone (SignedInfo).
        :returns: header 0x80, the element's SE code, its content, ED, padding.
        :raises ExiError: naming the path of the first problem.
        """
        eng = self._fragment_engine(grammar)
        w = BitWriter(EXI_HEADER, 8)
        try:
            self._fragment_write(eng, w, msg, 0, eng.gset.fragment_width)
        except ExiError:
            raise
        except (TypeError, AttributeError, ValueError) as exc:
            raise ExiError(f"cannot encode: {exc}", path=[getattr(msg, "name", "?")]) from None
        w.bits(len(eng.gset.fragment_elements) + 1, eng.gset.fragment_width)
        return w.to_bytes()

    def _fragment_qname(self, eng: _Engine, name: str, node):
        ns = node.ns if isinstance(node, Message) else None
        if ns is not None:
            if (ns, name) not in eng.frag_index:
                raise ExiError(f"{{{ns}}}{name} is not declared in {eng.name}", path=[name])
            return (ns, name)
        cands = eng.frag_by_local.get(name, [])
        if len(cands) != 1:
            raise ExiError(f"{name!r} is {'not declared' if not cands else 'ambiguous; set ns'} in {eng.name}",
                           path=[name])
        return cands[0]

    def _fragment_write(self, eng: _Engine, w: BitWriter, node, base: int, width: int, name=None) -> None:
        name = name or node.name
        qn = self._fragment_qname(eng, name, node)
        index = eng.frag_index[qn]
        w.bits(base + index, width)
        decls = eng.gset.fragment_elements[index][1]
        t = eng.gset.fragment_type(decls)
        if t is None:
            if not isinstance(node, Message):
                node = Message(name, value=node)

            def child(writer, cname, cval, cbase, cwidth):
                self._fragment_write(eng, writer, cval, cbase, cwidth, name=cname)
            try:
                eng.element_fragment.encode(w, node, decls, child)
            except ExiError as exc:
                exc.path.insert(0, name)
                raise
            return
        w.acc, w.nb = eng.encode_typed(t, node, w.acc, w.nb)

    # -- XML -------------------------------------------------------------------------

    def to_xml(self, msg: Message, pretty: bool = True) -> bytes:
        """
        Serialise a message tree as namespace-correct XML.

        :param msg: a decoded or hand-built tree (global element or any
            element of the set, e.g. a fragment root).
        :param pretty: indent the output.
        :returns: UTF-8 XML with a declaration.
        :raises ExiError: for names or values the schema does not know.
        """
        from evsev2g.exi.xmlconv import message_to_xml
        return message_to_xml(self._engine, msg, pretty)

    def from_xml(self, xml: bytes) -> Message:
        """
        Parse XML into a message tree (entity expansion and network access
        are disabled).

        :param xml: an XML document whose root is an element of the set.
        :returns: the :class:`Message`, equal to what :meth:`decode` gives
            for the same content.
        :raises ExiError: for malformed XML, undeclared names or bad values.
        """
        from evsev2g.exi.xmlconv import xml_to_message
        return xml_to_message(self._engine, xml)


def prepare(names, *, schema_dir: Path | None = None) -> dict[str, str]:
    """
    Make sure the codec cache holds these schema sets (and the xmldsig
    fragment grammar ISO 15118-2's signatures use), building the missing
    ones in child processes in parallel (:func:`~evsev2g.exi.cache.build_elsewhere`),
    so that :func:`load_codec` then only loads them, and a first signature
    check in a session only loads its grammar.

    :param names: schema sets (keys of :data:`SCHEMA_SETS`).
    :param schema_dir: another folder holding the schema sets.
    :returns: ``{schema set: problem}`` for the sets still missing (they
        are built in this process when loaded); empty when the cache is
        off or all are there.
    """
    if not cache.usable():
        return {}
    folder = Path(schema_dir) if schema_dir else SCHEMA_DIR
    jobs = []
    # the fragment grammars a set's signatures use load on first use; their entry is made now
    names = [also for name in names for also in (name, *_FRAGMENT_SETS.get(name, ()))]
    for name in dict.fromkeys(names):
        files = [folder / f for f in SCHEMA_SETS[name]]
        digest = cache.key(name, files)
        if not cache.present(name, digest):
            jobs.append((name, files, digest))
    return cache.build_elsewhere(jobs)


def load_codec(name: str, *, limits: Limits | None = None, schema_dir: Path | None = None) -> Codec:
    """
    The codec of a schema set, built once per process and argument set.

    :param name: ``"appHandshake"``, ``"din70121"`` or ``"iso15118-2"``.
    :param limits: decode limits (default :class:`Limits`).
    :param schema_dir: another folder holding the schema sets.
    :returns: the shared :class:`Codec`.
    :raises ExiError: for an unknown name or unusable schema files.
    """
    key = (name, limits or Limits(), str(schema_dir) if schema_dir else None)
    codec = _CACHE.get(key)
    if codec is None:
        with _LOCK:
            codec = _CACHE.get(key)
            if codec is None:
                codec = Codec(name, schema_dir=schema_dir, limits=limits)
                _CACHE[key] = codec
    return codec


