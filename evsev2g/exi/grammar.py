"""
Schema model → EXI grammars (EXI 1.0 §8.5) for the V2G options.

The options are fixed: schema-informed, ``strict = false``, nothing
preserved, ``valuePartitionCapacity = 0``, bit-packed.

How the grammars are represented
--------------------------------
A complex type's content model is turned into a tree of positions (one
*leaf* per element or wildcard particle) the way §8.5.4.1.5–8 build proto
grammars: a group with occurrence bounds becomes explicit copies, a loop
copy when unbounded; an element particle keeps its bounds and is handled
with a counter (after ``k`` occurrences the state offers the element again
while ``k < max`` and what follows while ``k >= min``), which is the
normalised grammar of its ``max - min`` optional copies without building
them.  Every state lists its events in the order §8.5.4.3 assigns codes:
declared attributes sorted by local name then URI, then ``SE(qname)`` in
construction order (the particle's own repetition first, then what follows
it; a substitution group's members sorted by local name then URI), then
``SE(uri:*)``, ``SE(*)``, ``EE`` and ``CH``.  Because ``strict`` is false,
every element state also has an escape to second-level events (§8.5.4.4.1),
coded as the last first-level value; :func:`second_level` lists them.

The document grammar (§8.5.1), the fragment grammar (§8.5.2) and the
element fragment grammar (§8.5.3) are built over the sorted global and
all-element qname lists; :class:`StringTables` are the pre-filled URI and
local-name partitions (§7.3.1, Appendix D).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evsev2g.exi.message import Shape
from evsev2g.exi.xsd import XML_NS, XS, XSI, ComplexType, ElementDecl, SchemaSet, SimpleType, Wildcard

if TYPE_CHECKING:
    from evsev2g.exi.grammar_builder import _Node

__all__ = [
    "Leaf", "State", "TypeGrammar", "GrammarSet", "StringTables", "build_grammars",
    "code_width", "qname_key", "EV_AT", "EV_SE", "EV_SE_URI", "EV_SE_ANY", "EV_EE", "EV_CH",
]

#: Event kinds used in :attr:`State.events`.
EV_AT, EV_SE, EV_SE_URI, EV_SE_ANY, EV_EE, EV_CH = "AT", "SE", "SE_URI", "SE_ANY", "EE", "CH"

#: Largest number of explicit copies made for a bounded repeated model group.
MAX_GROUP_COPIES = 64


def code_width(count: int) -> int:
    """
    :param count: number of distinct values of one event-code part.
    :returns: the bits that part takes, ``⌈log2 count⌉`` (§6.2).
    """
    return (count - 1).bit_length() if count > 1 else 0


def qname_key(qn: tuple[str, str]) -> tuple[str, str]:
    """Sort key for qnames: local name, then URI, in code-point order (§8.5.1)."""
    return (qn[1], qn[0])


@dataclass(eq=False, slots=True)
class Leaf:
    """
    One position of a content model: an element particle (with the members
    of its substitution group) or a wildcard particle.

    :ivar index: document-order index within the type.
    :ivar min: minOccurs of the particle.
    :ivar max: maxOccurs (``None`` = unbounded).
    :ivar alternatives: the :class:`ElementDecl` list this position accepts,
        in event-code order (empty for a wildcard).
    :ivar wildcard: the :class:`Wildcard`, or ``None``.
    """

    index: int
    min: int
    max: int | None
    alternatives: list = field(default_factory=list)
    wildcard: Wildcard | None = None
    node: _Node | None = None

    def classes(self) -> list[str]:
        """
        The count classes this leaf can be in after an occurrence: ``"lt"``
        (below minOccurs), ``"mid"`` or ``"max"`` (at maxOccurs).
        """
        out = []
        if self.min > 1:
            out.append("lt")
        if self.max is None or self.max > max(self.min, 1):
            out.append("mid")
        if self.max is not None:
            out.append("max")
        return out


@dataclass(eq=False, slots=True)
class State:
    """
    One grammar state (non-terminal) of a type grammar.

    :ivar index: index in :attr:`TypeGrammar.states`.
    :ivar label: human-readable name used in errors.
    :ivar events: first-level events in event-code order; each is a tuple
        ``(kind, arg)``: ``("AT", attribute index)``, ``("SE", (leaf index,
        alternative index))``, ``("SE_URI", (leaf index, uri))``,
        ``("SE_ANY", leaf index)``, ``("EE", None)``, ``("CH", None)``.
    :ivar width: bits of the first-level code (escape slot included).
    :ivar phase: ``"first"`` (state 0), ``"start"`` (attribute states up to
        the content start) or ``"content"``; decides the second level.
    :ivar ch_target: state index after ``CH`` (simple or mixed content).
    """

    index: int
    label: str
    events: list
    phase: str
    ch_target: int | None = None

    @property
    def width(self) -> int:
        """Bits of the first-level event code (escape included, §8.5.4.4.1)."""
        return code_width(len(self.events) + 1)

    def has(self, kind: str) -> bool:
        """Whether an event of ``kind`` is declared here."""
        return any(ev[0] == kind for ev in self.events)


class TypeGrammar:
    """
    The EXI grammar of one complex type.

    :ivar type: the :class:`ComplexType`.
    :ivar attributes: attribute uses sorted by local name, then URI.
    :ivar leaves: the content positions in document order.
    :ivar states: all states; ``states[0]`` is the start state.
    :ivar after_leaf: ``{(leaf index, count class): state index}``.
    :ivar after_attr: ``{attribute index: state index}`` (state after it).
    :ivar simple_end: for simple content, the state after ``CH``.
    :ivar forward: ``True`` when no transition returns to an earlier leaf
        (no loops over groups), so one pass in document order decodes it.
    :ivar unique_names: ``True`` when each child name belongs to exactly
        one leaf, so children can be put in schema order by name.
    :ivar shape: the :class:`~evsev2g.exi.message.Shape` every node of this
        type carries (decoded or read from XML).
    """

    __slots__ = ("type", "name", "attributes", "leaves", "states", "after_leaf", "after_attr", "simple_end",
                 "forward", "unique_names", "shape")

    def __init__(self, ctype: ComplexType, name: str) -> None:
        self.type = ctype
        self.name = name
        self.attributes = sorted(ctype.attributes, key=lambda a: (a.name, a.ns))
        self.leaves: list[Leaf] = []
        self.states: list[State] = []
        self.after_leaf: dict = {}
        self.after_attr: dict = {}
        self.simple_end: int | None = None
        self.forward = True
        self.unique_names = True
        self.shape: Shape | None = None

    def state_label(self, index: int) -> str:
        """:returns: ``"<type> state <label>"`` for error messages."""
        return f"{self.name} {self.states[index].label}"


def second_level(grammar: TypeGrammar | None, state: State) -> list[str]:
    """
    The second-level events of a state when ``strict`` is false (§8.5.4.4.1),
    after pruning what our options exclude (NS, SC, ER, CM, PI).

    :param grammar: the type grammar (``None`` for a simple type).
    :param state: the state.
    :returns: event names in code order: ``"EE"``, ``"xsi:type"``,
        ``"xsi:nil"``, ``"AT(*)"``, ``"AT(invalid)"``, ``"SE(*)"``, ``"CH"``.
    """
    out = []
    if not state.has(EV_EE):
        out.append("EE")
    if state.phase in ("first", "start"):
        if state.phase == "first":
            out += ["xsi:type", "xsi:nil"]
        out.append("AT(*)")
        if grammar is not None and grammar.attributes:
            out.append("AT(invalid)")
    out += ["SE(*)", "CH"]
    return out


def simple_states(label: str) -> list[State]:
    """The two states of a simple type's grammar: CH then EE (§8.5.4.1.3.1)."""
    return [State(0, f"{label} start", [(EV_CH, None)], "first", ch_target=1),
            State(1, f"{label} after character content", [(EV_EE, None)], "content")]


class StringTables:
    """
    The pre-filled string tables (§7.3.1, Appendix D): the URI partition and
    one local-name partition per URI.  The value partitions stay empty
    because ``valuePartitionCapacity`` is 0.

    :ivar uris: URI partition in compact-id order.
    :ivar local_names: ``{uri: [local names in compact-id order]}``.
    """

    _XSD_TYPES = sorted([
        "ENTITIES", "ENTITY", "ID", "IDREF", "IDREFS", "NCName", "NMTOKEN", "NMTOKENS", "NOTATION",
        "Name", "QName", "anySimpleType", "anyType", "anyURI", "base64Binary", "boolean", "byte",
        "date", "dateTime", "decimal", "double", "duration", "float", "gDay", "gMonth", "gMonthDay",
        "gYear", "gYearMonth", "hexBinary", "int", "integer", "language", "long", "negativeInteger",
        "nonNegativeInteger", "nonPositiveInteger", "normalizedString", "positiveInteger", "short",
        "string", "time", "token", "unsignedByte", "unsignedInt", "unsignedLong", "unsignedShort",
    ])

    def __init__(self, schema: SchemaSet) -> None:
        self.uris = ["", XML_NS, XSI, XS]
        extra = set(schema.target_namespaces) | set(schema.wildcard_namespaces)
        names: dict[str, set] = {}
        for decl in schema.all_elements:
            extra.add(decl.ns)
            names.setdefault(decl.ns, set()).add(decl.name)
        for au in schema.attributes:
            extra.add(au.ns)
            names.setdefault(au.ns, set()).add(au.name)
        for qn in schema.types:
            names.setdefault(qn[0], set()).add(qn[1])
        self.uris += sorted(u for u in extra if u not in self.uris)
        self.local_names = {
            "": sorted(names.get("", set())),
            XML_NS: ["base", "id", "lang", "space"],
            XSI: ["nil", "type"],
            XS: list(self._XSD_TYPES),
        }
        for uri in self.uris[4:]:
            self.local_names[uri] = sorted(names.get(uri, set()))


class GrammarSet:
    """
    All grammars of one schema set.

    :ivar schema: the :class:`SchemaSet`.
    :ivar globals: global element declarations in DocContent code order.
    :ivar fragment_elements: ``[(qname, [declarations])]`` in FragmentContent
        code order (every element qname of the set once).
    :ivar types: ``{id(ComplexType): TypeGrammar}``.
    :ivar strings: the :class:`StringTables`.
    """

    def __init__(self, schema: SchemaSet) -> None:
        self.schema = schema
        self.types: dict[int, TypeGrammar] = {}
        self._names: dict[int, str] = {}
        self.globals = sorted(schema.elements.values(), key=lambda d: qname_key(d.qname))
        by_qname: dict = {}
        for decl in schema.all_elements:
            by_qname.setdefault(decl.qname, []).append(decl)
        self.fragment_elements = sorted(by_qname.items(), key=lambda kv: qname_key(kv[0]))
        self.strings = StringTables(schema)

    @property
    def doc_width(self) -> int:
        """Bits of a DocContent event code: globals + SE(*) (§8.5.1)."""
        return code_width(len(self.globals) + 1)

    @property
    def fragment_width(self) -> int:
        """Bits of a FragmentContent event code: elements + SE(*) + ED (§8.5.2)."""
        return code_width(len(self.fragment_elements) + 2)

    def substitution_list(self, decl: ElementDecl) -> list[ElementDecl]:
        """
        The element declarations an element particle accepts: the element and
        every member of its substitution group, sorted (§8.5.4.1.6).  Abstract
        ones stay in the list; they still take an event code.
        """
        members = [decl] + list(self.schema.substitutes.get(decl.qname, []))
        unique = {}
        for m in members:
            unique.setdefault(m.qname, m)
        return sorted(unique.values(), key=lambda d: qname_key(d.qname))

    def type_name(self, ctype: ComplexType) -> str:
        """A unique, readable name for a complex type (anonymous ones get one)."""
        key = id(ctype)
        if key not in self._names:
            base = ctype.name[1] if ctype.name else "anon"
            name = base
            taken = set(self._names.values())
            k = 2
            while name in taken:
                name = f"{base}_{k}"
                k += 1
            self._names[key] = name
        return self._names[key]

    def grammar(self, ctype: ComplexType) -> TypeGrammar:
        """:returns: the (cached) :class:`TypeGrammar` of a complex type."""
        key = id(ctype)
        g = self.types.get(key)
        if g is None:
            from evsev2g.exi.grammar_builder import TypeBuilder  # only when a grammar is built

            g = TypeBuilder(self, ctype, self.type_name(ctype)).build()
            self.types[key] = g
        return g

    def fragment_type(self, decls: list[ElementDecl]):
        """
        The type whose grammar a fragment root (or element fragment child)
        with these declarations uses, or ``None`` when the declarations
        disagree on type or nillable and the element fragment grammar
        applies (§8.5.2 note).
        """
        first = decls[0]
        for d in decls[1:]:
            if d.type is not first.type or d.nillable != first.nillable:
                return None
        return first.type

    def fragment_attributes(self) -> list:
        """
        Every attribute qname of the set, sorted (ElementFragment AT events,
        §8.5.3), with its type when all uses agree, else ``None``.
        """
        by_qname: dict = {}
        for au in self.schema.attributes:
            by_qname.setdefault(au.qname, []).append(au.type)
        out = []
        for qn in sorted(by_qname, key=qname_key):
            types = by_qname[qn]
            out.append((qn, types[0] if all(t is types[0] for t in types) else None))
        return out


def build_grammars(schema: SchemaSet) -> GrammarSet:
    """
    Build every grammar of a schema set.

    :param schema: the :class:`SchemaSet`.
    :returns: the :class:`GrammarSet` with the grammar of every complex type
        reachable from an element declaration already built.
    :raises SchemaError: for content models EXI grammars cannot be built for.
    """
    gset = GrammarSet(schema)
    for decl in schema.all_elements:
        if isinstance(decl.type, ComplexType):
            gset.grammar(decl.type)
    return gset


def describe(gset: GrammarSet) -> list[str]:
    """
    A canonical text form of every grammar of a set (state by state, with
    event codes and widths), used to compare two schema folders.

    :param gset: the :class:`GrammarSet`.
    :returns: lines of text.
    """
    lines = [f"DocContent width={gset.doc_width}"]
    lines += [f"  G {d.ns} {d.name}" for d in gset.globals]
    lines.append(f"FragmentContent width={gset.fragment_width}")
    lines += [f"  F {qn[0]} {qn[1]}" for qn, _ in gset.fragment_elements]
    lines += [f"  A {qn[0]} {qn[1]} {_type_sig(t)}" for qn, t in gset.fragment_attributes()]
    for decl in sorted(gset.schema.all_elements, key=lambda d: (qname_key(d.qname), _type_sig(d.type))):
        lines.append(f"E {decl.ns} {decl.name} {_type_sig(decl.type)} abstract={decl.abstract}"
                     f" nillable={decl.nillable}")
    sections = {}
    for decl in gset.schema.all_elements:
        t = decl.type
        if isinstance(t, ComplexType):
            label = t.name[1] if t.name else f"anonymous type of {decl.ns} {decl.name}"
            if label in sections:
                continue
            g = gset.grammar(t)
            body = [f"T {label}"]
            for a in g.attributes:
                body.append(f"  @ {a.ns} {a.name} {_type_sig(a.type)} required={a.required}")
            for st in g.states:
                evs = []
                for kind, arg in st.events:
                    if kind == EV_SE:
                        alt = g.leaves[arg[0]].alternatives[arg[1]]
                        evs.append(f"SE({alt.ns} {alt.name} {_type_sig(alt.type)})")
                    elif kind == EV_AT:
                        evs.append(f"AT({g.attributes[arg].name})")
                    else:
                        evs.append(f"{kind}({arg})" if kind == EV_SE_URI else kind)
                body.append(f"  {st.label} w={st.width} {' '.join(evs)}")
            sections[label] = body
    for label in sorted(sections):
        lines += sections[label]
    return lines


def _type_sig(t) -> str:
    if t is None:
        return "untyped"
    if isinstance(t, SimpleType):
        if t.name is not None:
            return t.name[1]
        return (f"anon({t.builtin},{t.variety},{sorted((k, str(v)) for k, v in t.facets.items())},"
                f"{t.enumeration},{_type_sig(t.item) if t.item else ''})")
    if t.name is not None:
        return t.name[1]
    return f"anon-complex({t.content},{t.mixed})"
