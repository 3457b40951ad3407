"""
XSD files → a schema model the EXI grammar builder works from.

Only what EXI needs is kept: element declarations (global and local, with
substitution groups, abstract and nillable flags), complex types (attribute
uses, content particles, simple content, mixed), simple types (built-in
ancestry, facets, enumerations, list and union), model groups and wildcards.

The files are read by :mod:`evsev2g.exi.xsd_reader` (lxml, with entity
resolution, DTD loading and network access disabled), which only a codec
build imports: a codec loaded from the cache needs the model, not the reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


__all__ = [
    "XS", "XSI", "XML_NS", "QName", "SimpleType", "ComplexType", "AttributeUse",
    "ElementDecl", "Particle", "ModelGroup", "Wildcard", "SchemaSet", "load_schema_set",
    "builtin_type", "XML_PARSER_OPTIONS",
]

XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS = "http://www.w3.org/XML/1998/namespace"

#: A qualified name as ``(namespace URI, local name)``; ``""`` is no namespace.
QName = tuple[str, str]

UNBOUNDED = None


@dataclass(eq=False)
class SimpleType:
    """
    A simple type: atomic, list or union.

    :ivar name: qname, or ``None`` when anonymous.
    :ivar variety: ``"atomic"``, ``"list"`` or ``"union"``.
    :ivar base: the type it restricts (``None`` for anySimpleType).
    :ivar builtin: local name of the closest XSD built-in ancestor
        (``"unsignedByte"``, ``"string"`` …); decides the EXI representation.
    :ivar facets: effective facets merged along the derivation chain
        (``minInclusive``, ``maxInclusive``, ``length``, ``minLength``,
        ``maxLength``, ``totalDigits``, ``fractionDigits``, ``pattern``
        (list) …); exclusive bounds are kept as given.
    :ivar enumeration: lexical enumeration values in schema order, or ``None``.
    :ivar item: item type of a list type.
    :ivar members: member types of a union type.
    """

    name: QName | None
    variety: str = "atomic"
    base: "SimpleType | None" = None
    builtin: str = "anySimpleType"
    facets: dict = field(default_factory=dict)
    enumeration: list | None = None
    item: "SimpleType | None" = None
    members: list = field(default_factory=list)

    @property
    def label(self) -> str:
        """A readable name for messages."""
        if self.name:
            return self.name[1]
        return f"anonymous {self.builtin}"


@dataclass(eq=False, slots=True)
class AttributeUse:
    """
    An attribute use of a complex type.

    :ivar name: local name.
    :ivar ns: namespace URI (``""`` when unqualified).
    :ivar type: its :class:`SimpleType`.
    :ivar required: ``use="required"``.
    """

    name: str
    ns: str
    type: SimpleType
    required: bool = False

    @property
    def qname(self) -> QName:
        """``(ns, name)``."""
        return (self.ns, self.name)


@dataclass(eq=False, slots=True)
class Wildcard:
    """
    An ``xs:any`` / ``xs:anyAttribute`` namespace constraint.

    :ivar mode: ``"any"``, ``"not"`` (``##other``: any namespace but
        ``namespaces[0]`` and no namespace) or ``"set"``.
    :ivar namespaces: the URIs the constraint names.
    """

    mode: str
    namespaces: tuple = ()


@dataclass(eq=False, slots=True)
class ModelGroup:
    """
    ``xs:sequence``, ``xs:choice`` or ``xs:all``.

    :ivar kind: ``"sequence"``, ``"choice"`` or ``"all"``.
    :ivar particles: the :class:`Particle` list in schema order.
    """

    kind: str
    particles: list = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Particle:
    """
    A term with occurrence bounds.

    :ivar min: minOccurs.
    :ivar max: maxOccurs, ``None`` for unbounded.
    :ivar term: :class:`ElementDecl`, :class:`ModelGroup` or :class:`Wildcard`.
    """

    min: int
    max: int | None
    term: Union["ElementDecl", ModelGroup, Wildcard]


@dataclass(eq=False, slots=True)
class ComplexType:
    """
    A complex type with its effective content (after extension/restriction).

    :ivar name: qname or ``None`` when anonymous.
    :ivar attributes: effective attribute uses.
    :ivar attribute_wildcard: :class:`Wildcard` or ``None``.
    :ivar content: ``"empty"``, ``"simple"`` or ``"element"``.
    :ivar mixed: character data allowed between child elements.
    :ivar simple_type: the content type when ``content == "simple"``.
    :ivar particle: the content :class:`Particle` when ``content == "element"``.
    :ivar abstract: the type is abstract.
    """

    name: QName | None
    attributes: list = field(default_factory=list)
    attribute_wildcard: Wildcard | None = None
    content: str = "empty"
    mixed: bool = False
    simple_type: SimpleType | None = None
    particle: Particle | None = None
    abstract: bool = False
    base: "ComplexType | SimpleType | None" = None

    @property
    def label(self) -> str:
        """A readable name for messages."""
        return self.name[1] if self.name else "anonymous type"


@dataclass(eq=False, slots=True)
class ElementDecl:
    """
    An element declaration.

    :ivar name: local name.
    :ivar ns: namespace URI (``""`` when unqualified).
    :ivar type: :class:`ComplexType` or :class:`SimpleType`.
    :ivar is_global: declared at the top level of a schema document.
    :ivar abstract: may not appear itself (still counted by EXI).
    :ivar nillable: may carry ``xsi:nil``.
    :ivar head: substitution group head, or ``None``.
    """

    name: str
    ns: str
    type: Union[ComplexType, SimpleType, None] = None
    is_global: bool = False
    abstract: bool = False
    nillable: bool = False
    head: "ElementDecl | None" = None

    @property
    def qname(self) -> QName:
        """``(ns, name)``."""
        return (self.ns, self.name)


# -- built-in simple types --------------------------------------------------

_BUILTIN_TREE = {
    # name: (base, facets)
    "anySimpleType": (None, {}),
    "string": ("anySimpleType", {}),
    "normalizedString": ("string", {}),
    "token": ("normalizedString", {}),
    "language": ("token", {}),
    "Name": ("token", {}),
    "NMTOKEN": ("token", {}),
    "NCName": ("Name", {}),
    "ID": ("NCName", {}),
    "IDREF": ("NCName", {}),
    "ENTITY": ("NCName", {}),
    "boolean": ("anySimpleType", {}),
    "decimal": ("anySimpleType", {}),
    "integer": ("decimal", {"fractionDigits": 0}),
    "nonPositiveInteger": ("integer", {"maxInclusive": 0}),
    "negativeInteger": ("nonPositiveInteger", {"maxInclusive": -1}),
    "long": ("integer", {"minInclusive": -(2**63), "maxInclusive": 2**63 - 1}),
    "int": ("long", {"minInclusive": -(2**31), "maxInclusive": 2**31 - 1}),
    "short": ("int", {"minInclusive": -(2**15), "maxInclusive": 2**15 - 1}),
    "byte": ("short", {"minInclusive": -128, "maxInclusive": 127}),
    "nonNegativeInteger": ("integer", {"minInclusive": 0}),
    "unsignedLong": ("nonNegativeInteger", {"maxInclusive": 2**64 - 1}),
    "unsignedInt": ("unsignedLong", {"maxInclusive": 2**32 - 1}),
    "unsignedShort": ("unsignedInt", {"maxInclusive": 2**16 - 1}),
    "unsignedByte": ("unsignedShort", {"maxInclusive": 255}),
    "positiveInteger": ("nonNegativeInteger", {"minInclusive": 1}),
    "float": ("anySimpleType", {}),
    "double": ("anySimpleType", {}),
    "duration": ("anySimpleType", {}),
    "dateTime": ("anySimpleType", {}),
    "time": ("anySimpleType", {}),
    "date": ("anySimpleType", {}),
    "gYearMonth": ("anySimpleType", {}),
    "gYear": ("anySimpleType", {}),
    "gMonthDay": ("anySimpleType", {}),
    "gDay": ("anySimpleType", {}),
    "gMonth": ("anySimpleType", {}),
    "hexBinary": ("anySimpleType", {}),
    "base64Binary": ("anySimpleType", {}),
    "anyURI": ("anySimpleType", {}),
    "QName": ("anySimpleType", {}),
    "NOTATION": ("anySimpleType", {}),
}
_BUILTIN_LISTS = {"IDREFS": "IDREF", "ENTITIES": "ENTITY", "NMTOKENS": "NMTOKEN"}
_BUILTINS: dict[str, SimpleType] = {}


def builtin_type(name: str) -> SimpleType:
    """
    :param name: local name of an XSD built-in simple type.
    :returns: the shared :class:`SimpleType` for it.
    :raises KeyError: for an unknown name.
    """
    if not _BUILTINS:
        for local, (base, facets) in _BUILTIN_TREE.items():
            parent = _BUILTINS[base] if base else None
            merged = dict(parent.facets) if parent else {}
            merged.update(facets)
            _BUILTINS[local] = SimpleType((XS, local), base=parent, builtin=local, facets=merged)
        for local, item in _BUILTIN_LISTS.items():
            _BUILTINS[local] = SimpleType((XS, local), variety="list", base=_BUILTINS["anySimpleType"],
                                          builtin=local, item=_BUILTINS[item])
    return _BUILTINS[name]


@dataclass
class SchemaSet:
    """
    Every component of a set of schema files.

    :ivar name: the set's name (``"iso15118-2"`` …).
    :ivar elements: global element declarations by qname.
    :ivar all_elements: every element declaration, global and local, in
        reading order.
    :ivar types: named types by qname.
    :ivar substitutes: for each head qname, the declarations that reach it
        through ``substitutionGroup`` (direct or indirect).
    :ivar target_namespaces: namespaces the files define.
    :ivar wildcard_namespaces: URIs named in wildcard namespace lists.
    :ivar attributes: every attribute use seen (for the string tables).
    """

    name: str
    elements: dict = field(default_factory=dict)
    all_elements: list = field(default_factory=list)
    types: dict = field(default_factory=dict)
    substitutes: dict = field(default_factory=dict)
    target_namespaces: set = field(default_factory=set)
    wildcard_namespaces: set = field(default_factory=set)
    attributes: list = field(default_factory=list)


#: lxml parser options for the schema files: no entity expansion, DTD or
#: network access.  (Messages in ``from_xml`` are read without lxml: see
#: :mod:`evsev2g.exi.xmlconv`.)
XML_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False,
                          remove_comments=True, remove_pis=True, huge_tree=False)


def load_schema_set(name: str, entry_files: list[Path]) -> SchemaSet:
    """
    Read a schema set (with :mod:`evsev2g.exi.xsd_reader`, imported here:
    a codec loaded from the cache never reads an XSD).

    :param name: the set's name, used in messages.
    :param entry_files: the schema files to start from; everything they
        import or include (from the same folder) is read too.
    :returns: the :class:`SchemaSet`.
    :raises SchemaError: on unreadable files, unresolvable references or
        constructs EXI grammars cannot be built for.
    """
    from evsev2g.exi.xsd_reader import read_schema_set

    return read_schema_set(name, entry_files)
