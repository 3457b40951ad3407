"""
Message trees ↔ XML, driven by the schema (namespaces, types, lexical forms).

XML is read with the standard library's expat parser, refusing any
DOCTYPE (so no entity is declared, let alone expanded, and nothing is
loaded) and any declared encoding but the four expat reads itself
(UTF-8, UTF-16, ISO-8859-1, US-ASCII): for any other name Python's codec
search is asked, and it remembers every name it did not find, so XML
declaring ever new encodings (fuzzing found it) grew the process without
bound.  Expat rather than lxml: lxml interns every element and attribute name
and namespace it ever parses in a per-thread dictionary that is never
freed, so XML with ever new names (fuzzing found it) grew the process
without bound.  lxml writes the XML (names from the schema only).  The output uses the prefixes V2G tools customarily use
(``v2gci_d``, ``v2gci_h``, ``v2gci_b``, ``v2gci_t``, ``xmlsig``, ``ns``), so
it reads like the XML in the standards and validates against the XSDs.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import ParseError, TreeBuilder, XMLParser

from lxml import etree

from evsev2g.exi.errors import ExiError
from evsev2g.exi.message import Message
from evsev2g.exi.values import representation
from evsev2g.exi.xsd import ComplexType, SimpleType

__all__ = ["message_to_xml", "xml_to_message"]

_PREFIXES = {
    "MsgDef": "v2gci_d", "MsgHeader": "v2gci_h", "MsgBody": "v2gci_b", "MsgDataTypes": "v2gci_t",
    "http://www.w3.org/2000/09/xmldsig#": "xmlsig", "AppProtocol": "ns",
}


def _prefix(uri: str, taken: dict) -> str:
    for key, prefix in _PREFIXES.items():
        if uri == key or uri.endswith(":" + key):
            if prefix not in taken.values():
                return prefix
    return f"ns{len(taken)}"


def _resolve_root(eng, name: str, ns):
    """The declarations a root element of this name may be (global first)."""
    if ns is not None:
        qn = (ns, name)
        if qn in eng.global_index:
            return qn, [eng.gset.globals[eng.global_index[qn]]]
        if qn in eng.frag_index:
            return qn, eng.gset.fragment_elements[eng.frag_index[qn]][1]
        raise ExiError(f"{{{ns}}}{name} is not declared in {eng.name}", path=[name])
    cands = eng.global_by_local.get(name) or eng.frag_by_local.get(name) or []
    if len(cands) != 1:
        raise ExiError(f"{name!r} is {'not declared' if not cands else 'ambiguous'} in {eng.name}", path=[name])
    qn = cands[0]
    if qn in eng.global_index:
        return qn, [eng.gset.globals[eng.global_index[qn]]]
    return qn, eng.gset.fragment_elements[eng.frag_index[qn]][1]


def _root_type(eng, decls):
    return eng.gset.fragment_type(decls) if len(decls) > 1 else decls[0].type


def _child_decl(eng, ctype: ComplexType, name: str, ns=None):
    g = eng.gset.grammar(ctype)
    for leaf in g.leaves:
        for alt in leaf.alternatives:
            if alt.name == name and (ns is None or alt.ns == ns):
                return alt
    return None


# -- to XML ------------------------------------------------------------------

def message_to_xml(eng, msg: Message, pretty: bool = True) -> bytes:
    """
    :param eng: the codec engine; :param msg: the tree; :param pretty: indent.
    :returns: UTF-8 XML bytes.
    """
    if not isinstance(msg, Message):
        raise ExiError(f"expected a Message, got {type(msg).__name__}")
    qn, decls = _resolve_root(eng, msg.name, msg.ns)
    uris: dict = {}
    _collect(eng, _root_type(eng, decls), msg, qn[0], uris, decls)
    nsmap = {}
    for uri in sorted(uris):
        if uri:
            nsmap[_prefix(uri, nsmap)] = uri
    root = _build(eng, _root_type(eng, decls), msg, qn, nsmap, None, decls)
    if pretty:
        etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _collect(eng, t, node, ns, uris, decls=None) -> None:
    uris[ns] = True
    if isinstance(t, ComplexType) and isinstance(node, Message):
        for au in t.attributes:
            if au.name in node.attrs:
                uris[au.ns] = True
        for name, val in node.children:
            if name == "#text":
                continue
            decl = _child_decl(eng, t, name)
            if decl is not None:
                _collect(eng, decl.type, val, decl.ns, uris)
    elif t is None and isinstance(node, Message):
        for name, val in node.children:
            if name != "#text":
                qn, cdecls = _resolve_root(eng, name, getattr(val, "ns", None))
                _collect(eng, _root_type(eng, cdecls), val, qn[0], uris, cdecls)
        for key in node.attrs:
            uris[eng.element_fragment.attribute_qname(decls or [], key)[0]] = True


def _tag(qn) -> str:
    return f"{{{qn[0]}}}{qn[1]}" if qn[0] else qn[1]


def _build(eng, t, node, qn, nsmap, parent, decls=None):
    el = etree.Element(_tag(qn), nsmap=nsmap) if parent is None else etree.SubElement(parent, _tag(qn))
    name = qn[1]
    try:
        if isinstance(t, ComplexType):
            if not isinstance(node, Message):
                node = Message(name, value=node)
            declared = {au.name: au for au in t.attributes}
            for key, val in node.attrs.items():
                au = declared.get(key)
                if au is None:
                    raise ExiError(f"unknown attribute {key!r}")
                el.set(_tag(au.qname), representation(au.type).to_text(val))
            if t.content == "simple":
                el.text = representation(t.simple_type).to_text(node.value) if node.value is not None else ""
            last = None
            for cname, val in node.children:
                if cname == "#text":
                    if last is None:
                        el.text = (el.text or "") + val
                    else:
                        last.tail = (last.tail or "") + val
                    continue
                decl = _child_decl(eng, t, cname, getattr(val, "ns", None) if isinstance(val, Message) else None)
                if decl is None:
                    raise ExiError(f"unknown child {cname!r}")
                last = _build(eng, decl.type, val, decl.qname, nsmap, el)
        elif t is None:
            if not isinstance(node, Message):
                node = Message(name, value=node)
            for key, val in node.attrs.items():
                el.set(_tag(eng.element_fragment.attribute_qname(decls or [], key)), str(val))
            if node.value is not None:
                el.text = str(node.value)
            for cname, val in node.children:
                if cname == "#text":
                    el.text = (el.text or "") + val
                    continue
                cqn, cdecls = _resolve_root(eng, cname, getattr(val, "ns", None))
                _build(eng, _root_type(eng, cdecls), val, cqn, nsmap, el, cdecls)
        else:
            value = node.value if isinstance(node, Message) else node
            el.text = representation(t).to_text(value)
    except ExiError as exc:
        exc.path.insert(0, name)
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ExiError(f"cannot write XML: {exc!r}", path=[name]) from None
    return el


# -- from XML ------------------------------------------------------------------

class _NoDoctype(TreeBuilder):
    """The tree builder of :func:`xml_to_message`: refuses any DOCTYPE (and so every entity declaration)."""

    def doctype(self, name, pubid, system):
        raise ParseError(f"DOCTYPE {name!r} refused: messages carry no DTD")


def _split(tag: str) -> tuple[str, str]:
    """``{namespace}local`` → ``(namespace, local)``; ``("", tag)`` without a namespace."""
    if tag[:1] == "{":
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


#: The encodings expat reads without asking Python's codec search.
EXPAT_ENCODINGS = frozenset({"utf-8", "utf-16", "utf-16be", "utf-16le", "iso-8859-1", "us-ascii"})

_DECLARED_ENCODING = re.compile(r"""\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def _check_encoding(xml: bytes) -> None:
    """Refuse a declared encoding expat would look up in Python's codec registry."""
    head = xml[:512]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "replace")
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    declared = _DECLARED_ENCODING.match(text)
    if declared and declared.group(1).lower() not in EXPAT_ENCODINGS:
        raise ExiError(f"malformed XML: encoding {declared.group(1)[:40]!r} is not read "
                       "(UTF-8, UTF-16, ISO-8859-1 or US-ASCII)")


def xml_to_message(eng, xml: bytes) -> Message:
    """
    :param eng: the codec engine; :param xml: XML bytes (or str).
    :returns: the :class:`Message`.
    """
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    _check_encoding(xml)
    parser = XMLParser(target=_NoDoctype())
    try:
        parser.feed(xml)
        root = parser.close()
    except (ParseError, LookupError, ValueError) as exc:  # LookupError: an unknown encoding declared
        raise ExiError(f"malformed XML: {exc}") from None
    namespace, local = _split(root.tag)
    qn, decls = _resolve_root(eng, local, namespace)
    return _parse(eng, _root_type(eng, decls), root, qn, decls)


def _parse(eng, t, el, qn, decls=None):
    name = qn[1]
    try:
        if isinstance(t, ComplexType):
            g = eng.gset.grammar(t)
            attrs = {}
            by_qname = {au.qname: au for au in t.attributes}
            for key, text in el.attrib.items():
                au = by_qname.get(_split(key))
                if au is None:
                    raise ExiError(f"undeclared attribute {key}")
                attrs[au.name] = representation(au.type).from_text(text)
            children = []
            value = None
            if t.content == "simple":
                if len(el):
                    raise ExiError("child elements in simple content")
                value = representation(t.simple_type).from_text(el.text or "")
            else:
                # whitespace-only text in mixed content is layout (to_xml indents), not data
                if t.mixed and el.text and el.text.strip():
                    children.append(("#text", el.text))
                elif el.text and el.text.strip():
                    raise ExiError(f"unexpected text {el.text.strip()[:20]!r}")
                for child in el:
                    namespace, local = _split(child.tag)
                    decl = _child_decl(eng, t, local, namespace)
                    if decl is None:
                        raise ExiError(f"undeclared child {child.tag}")
                    val = _parse(eng, decl.type, child, decl.qname)
                    children.append((decl.name, val))
                    if t.mixed and child.tail and child.tail.strip():
                        children.append(("#text", child.tail))
                    elif child.tail and child.tail.strip():
                        raise ExiError(f"unexpected text {child.tail.strip()[:20]!r}")
            return Message(name, children, ns=qn[0], attrs=attrs, value=value, shape=g.shape)
        if t is None:
            attrs = {}
            for key, text in el.attrib.items():
                attrs[_split(key)[1]] = text
            children = []
            if el.text:
                children.append(("#text", el.text))
            for child in el:
                namespace, local = _split(child.tag)
                cqn, cdecls = _resolve_root(eng, local, namespace)
                ctype = _root_type(eng, cdecls)
                node = _parse(eng, ctype, child, cqn, None if isinstance(ctype, SimpleType) else cdecls)
                children.append((cqn[1], node))
                if child.tail:
                    children.append(("#text", child.tail))
            value = None
            if len(children) == 1 and children[0][0] == "#text":
                value, children = children[0][1], []
            return Message(name, children, ns=qn[0], attrs=attrs, value=value)
        if len(el):
            raise ExiError("child elements in a simple-typed element")
        value = representation(t).from_text(el.text or "")
        if decls is not None:
            return Message(name, ns=qn[0], value=value)
        return value
    except ExiError as exc:
        exc.path.insert(0, name)
        raise
