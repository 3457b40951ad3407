"""
Helpers the generated decoders and encoders call, and the per-call
decoding context.

Everything here runs on the slow or error paths, or is small enough to be
cheap; the per-event hot path is the generated code itself (``codegen``).
"""

from __future__ import annotations

from dataclasses import dataclass

from evsev2g.exi.bits import read_bits, read_uint, write_uint
from evsev2g.exi.errors import ExiError, LimitExceeded
from evsev2g.exi.grammar import EV_AT, EV_SE, TypeGrammar, code_width, second_level, simple_states
from evsev2g.exi.message import Message, decoded_node
from evsev2g.exi.values import Representation, ValueTables, write_chars

__all__ = ["Limits", "DecodeContext", "runtime_namespace"]

_MISSING = object()


@dataclass(frozen=True)
class Limits:
    """
    Bounds on what a decoder accepts, so hostile input fails fast and in
    bounded memory.  The defaults are far above anything a V2G message
    needs (the largest, a CertificateInstallationRes, has a few dozen
    elements and certificates of about 1 kB).

    :ivar max_bytes: longest EXI stream accepted (bytes).
    :ivar max_string: longest string value (characters).
    :ivar max_binary: longest hexBinary/base64Binary value (bytes).
    :ivar max_list: most items in a list-typed value.
    :ivar max_repeat: most occurrences of one unbounded element in a row.
    :ivar max_elements: most elements of complex type in one message
        (each one's start and end events count against it).
    :ivar max_depth: deepest nesting of recursive types.
    """

    max_bytes: int = 1 << 20
    max_string: int = 1 << 16
    max_binary: int = 1 << 16
    max_list: int = 1 << 12
    max_repeat: int = 1 << 12
    max_elements: int = 1 << 15
    max_depth: int = 64


class DecodeContext:
    """
    State of one decode call shared by the generated functions.

    :ivar budget: elements still allowed (:attr:`Limits.max_elements`).
    :ivar depth: current nesting of recursive types.
    :ivar tables: the value string table (:class:`ValueTables`).
    :ivar limits: the :class:`Limits`.
    :ivar suspect: set when the tree may break the schema although it
        decoded: an element was ended early (non-strict EXI's second-level
        EE), or a value breaks a facet the stream itself cannot rule out
        (a length, digits).  A tree decoded without it set has every
        mandatory child and attribute and only values of their types, so
        the complete check (``Codec.decode(complete=True)``) runs the
        encoder's full check only on suspect trees.
    """

    __slots__ = ("budget", "depth", "tables", "limits", "suspect")

    def __init__(self, limits: Limits) -> None:
        """:param limits: the codec's :class:`Limits`."""
        self.budget = limits.max_elements
        self.depth = 0
        self.tables = ValueTables()
        self.limits = limits
        self.suspect = False


# -- decode-side errors -------------------------------------------------------

def over_budget(x: DecodeContext, p: int) -> ExiError:
    """:returns: the error for a message with too many elements."""
    return LimitExceeded(f"more than {x.limits.max_elements} elements in one message", bit=p)


def too_deep(p: int) -> ExiError:
    """:returns: the error for nesting beyond :attr:`Limits.max_depth`."""
    return LimitExceeded("elements nested too deeply", bit=p)


def too_many(p: int, count: int) -> ExiError:
    """:returns: the error for a repeated element beyond :attr:`Limits.max_repeat`."""
    return LimitExceeded(f"element repeated more than {count - 1} times", bit=p)


def too_long(p: int, what: str, length: int, limit: int) -> ExiError:
    """:returns: the error for a value longer than its limit."""
    return LimitExceeded(f"{what} value of length {length} exceeds the limit of {limit}", bit=p)


def out_of_range(p: int, rep: Representation, value) -> ExiError:
    """:returns: the error for a decoded value outside its type."""
    return ExiError(f"value {value} out of range of {rep.label}", bit=p)


def bad_end(v: int, n: int, p: int) -> ExiError:
    """:returns: the error for a deviation where a simple element must end."""
    return ExiError("schema deviation after a simple value (second-level SE(*)/CH) is not supported",
                    bit=p)


def failed(exc: BaseException, p: int, context: str) -> ExiError:
    """
    Turn an unexpected exception while decoding into ExiError.

    :param exc: the exception; :param p: the last bit offset reached;
    :param context: what was being decoded: a type grammar's name, or
        ``"DocContent"``/``"FragmentContent"``.
    """
    if isinstance(exc, ValueError) and "negative shift" in str(exc):
        return ExiError("truncated: the stream ends before the message does", bit=p, context=context)
    if isinstance(exc, RecursionError):
        return LimitExceeded("elements nested too deeply", bit=p, context=context)
    if isinstance(exc, (MemoryError, OverflowError)):
        return LimitExceeded(f"value too large ({type(exc).__name__})", bit=p, context=context)
    return ExiError(f"undecodable input ({type(exc).__name__}: {exc})", bit=p, context=context)


def escape(v: int, n: int, p: int, t: int, g: TypeGrammar, x: DecodeContext) -> tuple[int, int]:
    """
    Handle a first-level code that is not a declared event: an unused code,
    or the escape to second-level events (§8.5.4.4.1).  A second-level EE
    (an element ended early, as EXIficient writes an empty string) is
    accepted and marks the tree :attr:`~DecodeContext.suspect`; every
    other deviation is rejected, as libcbv2g does.

    :returns: ``(-1, p)`` for an accepted EE.
    :raises ExiError: otherwise.
    """
    if t == -3:
        raise ExiError("event code selects no production", bit=p, context=g.name)
    if t <= -10:
        state = g.states[-10 - t]
        events = second_level(g, state)
        width = code_width(len(events))
        start = p
        code, p = read_bits(v, n, p, width)
        if code >= len(events):
            raise ExiError("second-level event code selects no production", bit=start,
                           context=g.state_label(state.index))
        if events[code] == "EE":
            x.suspect = True
            return -1, p
        raise ExiError(f"second-level event {events[code]} (schema deviation) is not supported",
                       bit=start, context=g.state_label(state.index))
    raise ExiError(f"unexpected event (target {t})", bit=p, context=g.name)


def wildcard(v: int, n: int, p: int, g: TypeGrammar) -> ExiError:
    """:returns: the error for wildcard (SE(*)) content, which is not decoded."""
    return ExiError("element content matched by a wildcard (xs:any) is not supported", bit=p,
                    context=g.name)


_SIMPLE_STATES = simple_states("simple element")
_SIMPLE_FIRST = second_level(None, _SIMPLE_STATES[0])
_SIMPLE_END = second_level(None, _SIMPLE_STATES[1])


def empty_value(rep: Representation, p: int):
    """The value of an element that ended before any character event."""
    if rep.kind == "string":
        return ""
    if rep.kind == "binary":
        return b""
    if rep.kind == "list":
        return []
    raise ExiError(f"element of type {rep.label} ended without a value", bit=p)


def simple_child(v: int, n: int, p: int, x: DecodeContext, rep: Representation, qname):
    """
    Decode a simple-typed element's content (CH value, EE) from its first
    event code, including the escape paths the inline code leaves out.

    :returns: ``(value, new offset)``.
    """
    start = p
    code, p = read_bits(v, n, p, 1)
    if code:
        code, p = read_bits(v, n, p, code_width(len(_SIMPLE_FIRST)))
        event = _SIMPLE_FIRST[code] if code < len(_SIMPLE_FIRST) else None
        if event == "EE":
            x.suspect = True
            return empty_value(rep, p), p
        raise ExiError(f"second-level event {event or code} (schema deviation) is not supported",
                       bit=start, context=f"{qname[1]} ({rep.label})")
    if rep.kind == "string":
        value, p = x.tables.read(v, n, p, qname, x.limits.max_string)
    else:
        value, p = rep.read(v, n, p, x.limits)
    code, p = read_bits(v, n, p, 1)
    if code:
        raise ExiError("schema deviation after a simple value is not supported", bit=p - 1,
                       context=f"{qname[1]} ({rep.label})")
    if rep.unchecked and not rep.fits(value):
        x.suspect = True
    return value, p


# -- encode-side errors and helpers --------------------------------------------

def bad_value(rep: Representation, value, name: str) -> ExiError:
    """:returns: the error for a value that does not fit its type."""
    try:
        rep.check(value)
    except ExiError as exc:
        exc.path.insert(0, name)
        return exc
    return ExiError(f"value {value!r} does not fit {rep.label}", path=[name])


def value_write(acc: int, nb: int, rep: Representation, value, label: str) -> tuple[int, int]:
    """Check and write one value (attribute or simple content)."""
    if value is None:
        raise ExiError(f"missing value of type {rep.label}", path=[label])
    try:
        rep.check(value)
    except ExiError as exc:
        exc.path.insert(0, label)
        raise
    if rep.kind == "string":
        acc, nb = write_uint(acc, nb, len(value) + 2)
        return write_chars(acc, nb, value)
    return rep.write(acc, nb, value)


def simple_write(acc: int, nb: int, rep: Representation, value, name: str) -> tuple[int, int]:
    """Write a simple-typed element: CH code 0, the value, EE code 0."""
    if value.__class__ is Message:
        raise ExiError(f"a plain {rep.kind} value is expected here, not an element with children",
                       path=[name])
    acc, nb = value_write(acc << 1, nb + 1, rep, value, name)
    return acc << 1, nb + 1


def join_bits(parts: list, acc: int, nb: int) -> tuple[int, int]:
    """
    Put output ints set aside by an encode loop back together (pairwise, so
    the cost grows as n log n, not n²).

    :param parts: ``[(bits, count)]`` in stream order; :param acc: the last
        part's bits; :param nb: their count.
    :returns: ``(acc, nb)`` of the whole.
    """
    parts = parts + [(acc, nb)]
    while len(parts) > 1:
        merged = [((a << d) | c, b + d) for (a, b), (c, d) in zip(parts[::2], parts[1::2])]
        if len(parts) % 2:
            merged.append(parts[-1])
        parts = merged
    return parts[0]


def not_a_message(node) -> ExiError:
    """:returns: the error for a plain value where an element node is needed."""
    return ExiError(f"expected a Message here, got {type(node).__name__} {node!r}")


def unknown_attribute(node: Message, names) -> ExiError:
    """:returns: the error naming the attributes the type does not declare."""
    extra = sorted(set(node.attrs) - set(names))
    return ExiError(f"unknown attribute(s) {', '.join(extra)} (declared: {', '.join(names) or 'none'})")


def unexpected_children(node: Message) -> ExiError:
    """:returns: the error for children under an element that has none."""
    return ExiError(f"element has no child elements in the schema, got {', '.join(k for k, _ in node.children)}")


def misplaced(node: Message, kids, i: int, s: int, g: TypeGrammar) -> ExiError:
    """
    Explain why encoding a content model failed at child ``i`` in state
    ``s``: an unknown child, a mandatory child missing, or a child out of
    place or repeated too often.
    """
    expected = []
    state = g.states[s] if 0 <= s < len(g.states) else None
    if state is not None:
        for kind, arg in state.events:
            if kind == EV_SE:
                expected.append(g.leaves[arg[0]].alternatives[arg[1]].name)
            elif kind == EV_AT:
                expected.append("@" + g.attributes[arg].name)
            else:
                expected.append(kind)
    known = {alt.name for leaf in g.leaves for alt in leaf.alternatives}
    context = g.state_label(s) if state else g.name
    path = [node.name]
    for name, _ in node.children:
        if name not in known and name != "#text":
            return ExiError(f"unknown child {name!r} (the schema declares {', '.join(sorted(known)) or 'none'})",
                            context=g.name, path=path)
    kids = list(kids) if kids else list(node.children)
    rest = {name for name, _ in kids[i:]}
    if i >= len(kids) or not rest & set(expected):
        missing = [e for e in expected if e != "EE"]
        return ExiError(f"missing mandatory child: expected {' or '.join(missing) or 'end'}",
                        context=context, path=path)
    return ExiError(f"child {kids[i][0]!r} not allowed here: expected {' or '.join(expected)}"
                    " (out of order, or more occurrences than the schema allows)", context=context, path=path)


def runtime_namespace(limits: Limits) -> dict:
    """
    :param limits: the codec's :class:`Limits`.
    :returns: the globals the generated code runs with (before its own
        constants are added).
    """
    return {
        "Message": Message, "ExiError": ExiError, "MISSING": _MISSING, "mk": decoded_node,
        "read_uint": read_uint, "write_uint": write_uint, "write_chars": write_chars,
        "over_budget": over_budget, "too_deep": too_deep, "too_many": too_many, "too_long": too_long,
        "out_of_range": out_of_range, "bad_end": bad_end, "failed": failed, "escape": escape,
        "wildcard": wildcard, "simple_child": simple_child, "empty_value": empty_value,
        "bad_value": bad_value, "join_bits": join_bits,
        "value_write": value_write, "simple_write": simple_write, "not_a_message": not_a_message,
        "unknown_attribute": unknown_attribute, "unexpected_children": unexpected_children,
        "misplaced": misplaced,
        "LIM_STR": limits.max_string, "LIM_BIN": limits.max_binary, "LIM_REPEAT": limits.max_repeat,
        "LIM_DEPTH": limits.max_depth,
    }
