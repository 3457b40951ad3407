"""
The message tree the rest of evsev2g works with.

A decoded V2G message is a tree of :class:`Message` nodes, one per XML
element of complex type.  Children keep their document order (the order the
EXI stream or the XML had), which makes round trips lossless; access by name
goes through an index built on first use.

Values of simple-typed elements and attributes are plain Python values:

==========================  =====================================
XSD built-in (closest)      Python
==========================  =====================================
integer family              ``int``
boolean                     ``bool``
hexBinary, base64Binary     ``bytes``
string, anyURI, ID, enums   ``str``
decimal                     ``decimal.Decimal``
float, double               ``float``
list types                  ``list`` of the item values
==========================  =====================================

Reading::

    msg = codec.decode(data)
    msg.Header.SessionID                  # bytes
    msg.Body.CurrentDemandReq.EVTargetCurrent.Value
    msg.Body.get("SessionStopReq")        # None when absent
    app.AppProtocol                       # a list: maxOccurs > 1 in the schema

Building (children may be given in any order; the codec puts them in the
order the schema requires)::

    Message("V2G_Message",
            Header=Message("Header", SessionID=sid),
            Body=Message("Body", SessionSetupRes=Message(
                "SessionSetupRes", ResponseCode="OK_NewSessionEstablished",
                EVSEID=b"\\x00")))

This module is pure data: it imports nothing from Twisted and nothing from
the rest of the codec.
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["Message", "Shape", "decoded_node"]

_MISSING = object()


class Shape:
    """
    What the schema says about the children of one complex type: which
    names it declares and which of them may repeat (maxOccurs > 1).

    The codec gives every decoded node the shape of its type (one shared
    object per type), so that reading an absent optional child gives
    ``None``, an absent repeatable one ``[]``, and a name the schema does
    not know raises ``AttributeError``.

    :ivar declared: local names of child elements and attributes.
    :ivar repeated: the subset that may occur more than once.
    """

    __slots__ = ("declared", "repeated")

    def __init__(self, declared=(), repeated=()) -> None:
        self.declared = frozenset(declared) | frozenset(repeated)
        self.repeated = frozenset(repeated)

    def __repr__(self) -> str:
        return f"Shape(declared={sorted(self.declared)}, repeated={sorted(self.repeated)})"


_NO_SHAPE = Shape()


class Message:
    """
    One element of complex type in a message tree.

    :ivar name: the element's local name, e.g. ``"SessionSetupReq"``.
    :ivar ns: the element's namespace URI, or ``None`` when the node was
        built by hand and the schema decides it (the codec fills it in when
        decoding).
    :ivar attrs: XML attributes, local name to Python value, in document
        order (``{"Id": "id1"}``).  Qualified and unqualified attributes are
        both keyed by local name; the schema knows which is which.
    :ivar children: ``list`` of ``(local name, value)`` pairs in document
        order.  A value is a :class:`Message` for an element of complex
        type, otherwise the element's Python value.  A repeated element
        appears once per occurrence.  For mixed content (only in xmldsig),
        character data appears as ``("#text", str)``.
    :ivar value: the character content of an element of simple content
        that also carries attributes (xmldsig ``SignatureValue``, ISO-2
        ``eMAID`` in CertificateInstallationRes …), else ``None``.
    :ivar shape: the :class:`Shape` of the element's type, which decides
        what reading an absent child gives.
    """

    __slots__ = ("name", "ns", "attrs", "children", "value", "shape", "_index")

    def __init__(
        self,
        name: str,
        _children: list[tuple[str, Any]] | None = None,
        *,
        ns: str | None = None,
        attrs: dict[str, Any] | None = None,
        value: Any = None,
        shape: Shape | None = None,
        **fields: Any,
    ) -> None:
        """
        :param name: local name of the element.
        :param _children: ``(name, value)`` pairs in document order (what a
            decoder produces).
        :param ns: namespace URI, if known.
        :param attrs: attribute values by local name.
        :param value: simple content of an element that has attributes.
        :param shape: the schema's :class:`Shape` for this element's type
            (the codec passes it; hand-built nodes may leave it out).
        :param fields: children by name, for building by hand.  A ``list``
            value stands for a repeated element; ``None`` values are left
            out, so optional fields can be passed unconditionally.
        """
        self.name = name
        self.ns = ns
        self.attrs = attrs if attrs is not None else {}
        self.value = value
        children = _children if _children is not None else []
        repeated = ()
        for key, item in fields.items():
            if item is None:
                continue
            if isinstance(item, list):
                children.extend((key, each) for each in item)
                repeated += (key,)
            else:
                children.append((key, item))
        if shape is None:
            shape = Shape(repeated=repeated) if repeated else _NO_SHAPE
        self.shape = shape
        self.children = children
        self._index = None

    # -- reading -------------------------------------------------------

    def _lookup(self) -> dict[str, Any]:
        index = self._index
        if index is None:
            index = {}
            for key, item in self.children:
                if key in index:
                    previous = index[key]
                    if type(previous) is _Repeated:
                        previous.append(item)
                    else:
                        index[key] = _Repeated((previous, item))
                else:
                    index[key] = item
            self._index = index
        return index

    def get(self, key: str, default: Any = None) -> Any:
        """
        The child or attribute called ``key``, or ``default`` when absent.

        A child the schema lets repeat (see :class:`Shape`) is always a
        ``list``, empty when absent; so is any child that occurs more than
        once.
        """
        index = self._index
        item = (index if index is not None else self._lookup()).get(key, _MISSING)
        if item is _MISSING:
            if key in self.shape.repeated:
                return []
            return self.attrs.get(key, default)
        if type(item) is _Repeated:
            return list(item)
        if key in self.shape.repeated:
            return [item]
        return item

    def getlist(self, key: str) -> list[Any]:
        """Every child called ``key``, in document order (maybe empty)."""
        return [item for name, item in self.children if name == key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        item = self.get(key, _MISSING)
        if item is _MISSING:
            if key in self.shape.declared:
                return None
            raise AttributeError(
                f"<{self.name}> has no child or attribute {key!r}"
                f" (it has {', '.join(self.keys()) or 'none'})"
            )
        return item

    def __getitem__(self, key: str) -> Any:
        item = self.get(key, _MISSING)
        if item is _MISSING:
            raise KeyError(key)
        return item

    def __contains__(self, key: str) -> bool:
        return key in self._lookup() or key in self.attrs

    def keys(self) -> list[str]:
        """Names of the children present, in first-occurrence order."""
        return list(self._lookup())

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.children)

    @property
    def tag(self) -> str:
        """The element's name in Clark notation, ``{ns}name``."""
        return f"{{{self.ns}}}{self.name}" if self.ns else self.name

    # -- changing ------------------------------------------------------

    def set(self, key: str, item: Any) -> None:
        """
        Replace every child called ``key`` by ``item`` (a ``list`` for
        several occurrences; ``None`` removes it).  The first occurrence
        keeps its place; a new child goes to the end.
        """
        items = item if isinstance(item, list) else ([] if item is None else [item])
        out: list[tuple[str, Any]] = []
        placed = False
        for name, old in self.children:
            if name == key:
                if not placed:
                    out.extend((key, each) for each in items)
                    placed = True
            else:
                out.append((name, old))
        if not placed:
            out.extend((key, each) for each in items)
        self.children = out
        self._index = None

    def append(self, key: str, item: Any) -> None:
        """Add one more child called ``key`` at the end."""
        self.children.append((key, item))
        self._index = None

    # -- conversion ----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """
        Plain nested data: ``{child: value}``, repeated children as lists,
        attributes as ``"@name"`` keys, simple content as ``"#value"``.
        """
        out: dict[str, Any] = {f"@{k}": v for k, v in self.attrs.items()}
        if self.value is not None:
            out["#value"] = self.value
        for key, item in self.children:
            plain = item.to_dict() if isinstance(item, Message) else item
            if key in out:
                previous = out[key]
                if isinstance(previous, _Repeated):
                    previous.append(plain)
                else:
                    out[key] = _Repeated((previous, plain))
            else:
                out[key] = plain
        return {k: (list(v) if isinstance(v, _Repeated) else v) for k, v in out.items()}

    # -- comparison ----------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        if self.name != other.name:
            return False
        if self.ns is not None and other.ns is not None and self.ns != other.ns:
            return False
        return (
            self.attrs == other.attrs
            and self.value == other.value
            and self.children == other.children
        )

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        parts = [repr(self.name)]
        parts += [f"@{k}={v!r}" for k, v in self.attrs.items()]
        if self.value is not None:
            parts.append(f"value={self.value!r}")
        parts += [f"{k}={v!r}" for k, v in self.children]
        return f"Message({', '.join(parts)})"


def decoded_node(name: str, ns, children: list, attrs: dict, value, shape) -> Message:
    """
    Build a :class:`Message` as a decoder does: every slot given, none of the
    keyword handling of ``__init__`` (the generated decoders call this once
    per complex element, so it is on the hot path).  It lives here, beside
    the class, so that the slots are known in one file.
    """
    node = Message.__new__(Message)
    node.name = name
    node.ns = ns
    node.attrs = attrs
    node.value = value
    node.shape = shape
    node.children = children
    node._index = None
    return node


class _Repeated(list):
    """Marks a list made by the index for a repeated child (not user data)."""
