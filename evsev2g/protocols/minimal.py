"""
The smallest schema-valid body of a message, read from the schema itself.

A FAILED response must still carry every mandatory element ([V2G2-736];
the EV ignores their values, [V2G2-735]) and should carry nothing else
(EvseV2G's FAILED responses with optional elements fail ISO 15118-4's
TC_SECC_AC_VTB_ChargingStatus_004, EVerest issue #1523).  Rather than a
hand-written FAILED body per message, :func:`minimal_body` walks the
message's type in the XSD: every required element is filled with the
smallest value its type allows (the first enumeration value, the lower
bound of a number, a string or binary of the minimum length), optional
elements are left out, a choice takes its first branch and an abstract
element its first substitute.  ``fill`` puts real values where the state
machine has them (the DC_EVSEStatus, the ServiceID to echo …).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from evsev2g.exi.codec import load_codec
from evsev2g.exi.message import Message
from evsev2g.exi.xsd import ComplexType, ElementDecl, ModelGroup

__all__ = ["minimal_body", "prepare"]

#: Namespaces of message bodies per schema set.
_BODY_NAMESPACES = {
    "din70121": "urn:din:70121:2012:MsgBody",
    "iso15118-2": "urn:iso:15118:2:2013:MsgBody",
}


@lru_cache(maxsize=None)
def _schema(name: str):
    """
    The schema model the shared codec was built from (its grammars keep
    it, in the codec cache too): a session never reads the XSD files
    again, which would bring lxml and a second model, some 5 MB, into a
    running SECC.
    """
    return load_codec(name).grammars.schema


def prepare(schema: str) -> None:
    """
    Have ``schema``'s model at hand now rather than inside the first
    FAILED answer, whose performance time may be 25 ms (the codec is
    normally loaded at start-up; if not, this loads it).  The protocol
    plugins call it when a session has agreed on them, after the handshake
    response went out.

    :param schema: a schema set name.
    """
    _schema(schema)


def minimal_body(schema: str, element: str, fill: dict | None = None, prefer: str = "") -> Message:
    """
    :param schema: a schema set name (``"din70121"``, ``"iso15118-2"``).
    :param element: the body element, e.g. ``"ChargingStatusRes"``.
    :param fill: values by element name, used wherever a required element
        of that name is generated (at any depth), and to choose among
        substitutes of an abstract element.
    :param prefer: a name prefix (``"DC_"``, ``"AC_"``) that picks among
        substitutes of an abstract element when ``fill`` names none.
    :returns: the body ``Message``.
    """
    schema_set = _schema(schema)
    declaration = schema_set.elements[(_BODY_NAMESPACES[schema], element)]
    return _element(schema_set, declaration, fill or {}, prefer, itertools.count(1))[1]


def _element(schema_set, declaration: ElementDecl, fill: dict, prefer: str, ids):
    if declaration.abstract or getattr(declaration.type, "abstract", False):
        substitutes = [
            each
            for each in schema_set.substitutes.get(declaration.qname, [])
            if not (each.abstract or getattr(each.type, "abstract", False))
        ]
        chosen = next((each for each in substitutes if each.name in fill), None)
        if chosen is None:
            chosen = next((each for each in substitutes if each.name.startswith(prefer)), substitutes[0])
        declaration = chosen
    name = declaration.name
    if name in fill:
        return name, fill[name]
    kind = declaration.type
    if not isinstance(kind, ComplexType):
        return name, _simple(kind, ids)
    attrs = {attr.name: _simple(attr.type, ids) for attr in kind.attributes if attr.required}
    if kind.content == "simple":
        return name, Message(name, attrs=attrs, value=_simple(kind.simple_type, ids))
    children: list = []
    if kind.content == "element":
        _particle(schema_set, kind.particle, fill, prefer, children, ids)
    return name, Message(name, children, attrs=attrs)


def _particle(schema_set, particle, fill: dict, prefer: str, out: list, ids) -> None:
    if particle is None or particle.min == 0:
        return
    term = particle.term
    for _ in range(particle.min):
        if isinstance(term, ElementDecl):
            out.append(_element(schema_set, term, fill, prefer, ids))
        elif isinstance(term, ModelGroup):
            if term.kind == "choice":
                _particle(schema_set, _as_required(term.particles[0]), fill, prefer, out, ids)
            else:
                for each in term.particles:
                    _particle(schema_set, each, fill, prefer, out, ids)


def _as_required(particle):
    # A choice's branch is taken once even when it is optional on its own.
    if particle.min:
        return particle
    return type(particle)(1, particle.max, particle.term)


def _simple(kind, ids):
    """The smallest value of a simple type, as the codec takes it (IDs unique within the body)."""
    if kind.enumeration:
        return kind.enumeration[0]
    facets = kind.facets
    builtin = kind.builtin
    if builtin in ("hexBinary", "base64Binary"):
        return bytes(facets.get("length", facets.get("minLength", 0)))
    if builtin == "boolean":
        return False
    if builtin in ("ID", "IDREF", "NCName", "Name"):
        return f"id{next(ids)}"
    if builtin in ("string", "anyURI", "token", "normalizedString"):
        return "0" * facets.get("length", facets.get("minLength", 0))
    low = facets.get("minInclusive")
    if low is None:
        return 0
    high = facets.get("maxInclusive")
    value = max(low, 0)
    return min(value, high) if high is not None else value
