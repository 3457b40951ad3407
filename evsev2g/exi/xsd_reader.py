"""
Reading XSD files into the schema model of :mod:`evsev2g.exi.xsd`.

Only a codec build reads XSDs (a codec loaded from the cache never does),
so this module and lxml load only then.  The files are parsed with lxml
with entity resolution, DTD loading and network access disabled;
``xs:import``/``xs:include`` are followed only to files beside the
including file.  Circular imports are fine.
"""

from __future__ import annotations

from pathlib import Path

from evsev2g.exi.errors import SchemaError
from evsev2g.exi.xsd import (UNBOUNDED, XML_NS, XML_PARSER_OPTIONS, XS, AttributeUse, ComplexType, ElementDecl, ModelGroup,
                             Particle, QName, SchemaSet, SimpleType, Wildcard, builtin_type)

__all__ = ["read_schema_set"]

_FACETS_INT = ("length", "minLength", "maxLength", "totalDigits", "fractionDigits")
_FACETS_BOUND = ("minInclusive", "maxInclusive", "minExclusive", "maxExclusive")


def _xs(local: str) -> str:
    return f"{{{XS}}}{local}"


class _Document:
    """One parsed schema file and its defaults."""

    def __init__(self, path: Path, root) -> None:
        self.path = path
        self.root = root
        self.tns = root.get("targetNamespace", "")
        self.element_qualified = root.get("elementFormDefault") == "qualified"
        self.attribute_qualified = root.get("attributeFormDefault") == "qualified"


def _local(element) -> str:
    """The local name of an element's tag (``{namespace}local``); ``""`` for anything but an element."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


class _Reader:
    """Builds a :class:`SchemaSet` from schema documents, lazily and once per component."""

    def __init__(self, name: str) -> None:
        self.set = SchemaSet(name)
        self.docs: dict[Path, _Document] = {}
        self.top: dict[tuple[str, QName], tuple[_Document, object]] = {}
        self.built: dict[tuple[str, QName], object] = {}

    # files
    def load(self, path: Path) -> None:
        path = path.resolve()
        if path in self.docs:
            return
        from lxml import etree  # only when XSDs are read: a cached codec never needs lxml

        parser = etree.XMLParser(**XML_PARSER_OPTIONS)
        try:
            root = etree.parse(str(path), parser).getroot()
        except (OSError, etree.XMLSyntaxError) as exc:
            raise SchemaError(f"cannot read schema file {path}: {exc}") from None
        if root.tag != _xs("schema"):
            raise SchemaError(f"{path} is not an XML Schema document")
        doc = _Document(path, root)
        self.docs[path] = doc
        if doc.tns:
            self.set.target_namespaces.add(doc.tns)
        for child in root:
            tag = _local(child)
            if tag in ("import", "include", "redefine"):
                loc = child.get("schemaLocation")
                if not loc:
                    continue
                if "://" in loc or loc.startswith("/"):
                    raise SchemaError(f"{path}: refusing non-local schemaLocation {loc!r}")
                target = (path.parent / loc).resolve()
                if target.parent != path.parent.resolve():
                    raise SchemaError(f"{path}: schemaLocation {loc!r} leaves the schema folder")
                self.load(target)
            elif tag in ("element", "complexType", "simpleType", "attribute", "group", "attributeGroup"):
                key = (tag, (doc.tns, child.get("name")))
                self.top[key] = (doc, child)

    def qname(self, el, value: str) -> QName:
        prefix, _, local = value.rpartition(":")
        uri = el.nsmap.get(prefix or None)
        if uri is None:
            if prefix:
                raise SchemaError(f"unknown prefix {prefix!r} in {value!r}")
            uri = ""
        return (uri, local)

    def lookup(self, kind: str, qn: QName):
        key = (kind, qn)
        if key in self.built:
            return self.built[key]
        if kind in ("simpleType", "type") and qn[0] == XS:
            try:
                return builtin_type(qn[1])
            except KeyError:
                if qn[1] == "anyType":
                    return self._any_type()
                raise SchemaError(f"unknown built-in type xs:{qn[1]}") from None
        if kind == "type":
            if ("complexType", qn) in self.top:
                return self.lookup("complexType", qn)
            return self.lookup("simpleType", qn)
        found = self.top.get(key)
        if found is None:
            raise SchemaError(f"no {kind} named {{{qn[0]}}}{qn[1]} in schema set {self.set.name}")
        doc, el = found
        if kind == "complexType":
            obj = ComplexType(qn)
            self.built[key] = obj
            self.fill_complex(doc, el, obj)
            self.set.types[qn] = obj
        elif kind == "simpleType":
            obj = SimpleType(qn)
            self.built[key] = obj
            self.fill_simple(doc, el, obj)
            self.set.types[qn] = obj
        elif kind == "element":
            obj = ElementDecl(qn[1], qn[0], is_global=True)
            self.built[key] = obj
            self.fill_element(doc, el, obj)
            self.set.elements[qn] = obj
        else:
            obj = (doc, el)
            self.built[key] = obj
        return obj

    def _any_type(self) -> ComplexType:
        key = ("complexType", (XS, "anyType"))
        if key not in self.built:
            wild = Wildcard("any")
            self.built[key] = ComplexType(
                (XS, "anyType"), attribute_wildcard=wild, content="element", mixed=True,
                particle=Particle(1, 1, ModelGroup("sequence", [Particle(0, UNBOUNDED, wild)])))
        return self.built[key]

    # elements
    def fill_element(self, doc: _Document, el, obj: ElementDecl) -> None:
        obj.abstract = el.get("abstract") == "true"
        obj.nillable = el.get("nillable") == "true"
        self.set.all_elements.append(obj)
        if el.get("substitutionGroup"):
            head = self.lookup("element", self.qname(el, el.get("substitutionGroup")))
            obj.head = head
        if el.get("type"):
            obj.type = self.lookup("type", self.qname(el, el.get("type")))
        else:
            for child in el:
                tag = _local(child)
                if tag == "complexType":
                    obj.type = ComplexType(None)
                    self.fill_complex(doc, child, obj.type)
                elif tag == "simpleType":
                    obj.type = SimpleType(None)
                    self.fill_simple(doc, child, obj.type)
            if obj.type is None:
                obj.type = obj.head.type if obj.head is not None else self._any_type()

    def local_element(self, doc: _Document, el) -> ElementDecl:
        if el.get("ref"):
            return self.lookup("element", self.qname(el, el.get("ref")))
        form = el.get("form")
        qualified = form == "qualified" if form else doc.element_qualified
        obj = ElementDecl(el.get("name"), doc.tns if qualified else "")
        self.fill_element(doc, el, obj)
        return obj

    # simple types
    def fill_simple(self, doc: _Document, el, obj: SimpleType) -> None:
        for child in el:
            tag = _local(child)
            if tag == "restriction":
                base = self.simple_base(doc, child)
                self.restrict(doc, child, obj, base)
            elif tag == "list":
                obj.variety = "list"
                obj.base = builtin_type("anySimpleType")
                obj.builtin = "list"
                if child.get("itemType"):
                    obj.item = self.lookup("simpleType", self.qname(child, child.get("itemType")))
                else:
                    obj.item = SimpleType(None)
                    self.fill_simple(doc, child.find(_xs("simpleType")), obj.item)
            elif tag == "union":
                obj.variety = "union"
                obj.base = builtin_type("anySimpleType")
                obj.builtin = "union"
                for token in (child.get("memberTypes") or "").split():
                    obj.members.append(self.lookup("simpleType", self.qname(child, token)))
                for sub in child.findall(_xs("simpleType")):
                    member = SimpleType(None)
                    self.fill_simple(doc, sub, member)
                    obj.members.append(member)

    def simple_base(self, doc: _Document, el) -> SimpleType:
        if el.get("base"):
            base = self.lookup("type", self.qname(el, el.get("base")))
            if isinstance(base, ComplexType):
                if base.simple_type is None:
                    raise SchemaError(f"simple restriction of complex type {base.label}")
                return base.simple_type
            return base
        sub = el.find(_xs("simpleType"))
        base = SimpleType(None)
        self.fill_simple(doc, sub, base)
        return base

    def restrict(self, doc: _Document, el, obj: SimpleType, base: SimpleType) -> None:
        obj.base = base
        obj.variety = base.variety
        obj.builtin = base.builtin
        obj.item = base.item
        obj.members = list(base.members)
        facets = dict(base.facets)
        enum = None
        for facet in el:
            tag = _local(facet)
            value = facet.get("value")
            if tag == "enumeration":
                enum = (enum or []) + [value]
            elif tag == "pattern":
                facets["pattern"] = facets.get("pattern", []) + [value]
            elif tag in _FACETS_INT:
                facets[tag] = int(value)
            elif tag in _FACETS_BOUND:
                facets[tag] = _bound(value)
                # an inclusive and an exclusive bound on the same side do not mix
                other = {"minInclusive": "minExclusive", "minExclusive": "minInclusive",
                         "maxInclusive": "maxExclusive", "maxExclusive": "maxInclusive"}[tag]
                facets.pop(other, None)
            elif tag == "whiteSpace":
                facets[tag] = value
        obj.facets = facets
        obj.enumeration = enum if enum is not None else base.enumeration

    # complex types
    def fill_complex(self, doc: _Document, el, obj: ComplexType) -> None:
        obj.abstract = el.get("abstract") == "true"
        obj.mixed = el.get("mixed") == "true"
        attrs: list[AttributeUse] = []
        particle = None
        for child in el:
            tag = _local(child)
            if tag == "simpleContent":
                self.simple_content(doc, child, obj)
                return
            if tag == "complexContent":
                self.complex_content(doc, child, obj)
                return
            if tag in ("sequence", "choice", "all", "group"):
                particle = self.particle(doc, child)
            elif tag in ("attribute", "attributeGroup", "anyAttribute"):
                self.attribute_item(doc, child, attrs, obj)
        obj.attributes = attrs
        self.set_particle(obj, particle)

    def set_particle(self, obj: ComplexType, particle: Particle | None) -> None:
        if particle is not None and not _is_empty_particle(particle):
            obj.content = "element"
            obj.particle = particle
        elif obj.mixed:
            obj.content = "element"
            obj.particle = Particle(1, 1, ModelGroup("sequence", []))
        else:
            obj.content = "empty"
            obj.particle = None

    def simple_content(self, doc: _Document, el, obj: ComplexType) -> None:
        for child in el:
            tag = _local(child)
            if tag not in ("extension", "restriction"):
                continue
            base = self.lookup("type", self.qname(child, child.get("base")))
            obj.base = base
            attrs = list(base.attributes) if isinstance(base, ComplexType) else []
            obj.attribute_wildcard = base.attribute_wildcard if isinstance(base, ComplexType) else None
            base_simple = base.simple_type if isinstance(base, ComplexType) else base
            if base_simple is None:
                raise SchemaError(f"simpleContent of {obj.label} over a type without simple content")
            if tag == "restriction":
                st = SimpleType(None)
                inner = child.find(_xs("simpleType"))
                if inner is not None:
                    base_simple = SimpleType(None)
                    self.fill_simple(doc, inner, base_simple)
                self.restrict(doc, child, st, base_simple)
                obj.simple_type = st
            else:
                obj.simple_type = base_simple
            for item in child:
                itag = _local(item)
                if itag in ("attribute", "attributeGroup", "anyAttribute"):
                    self.attribute_item(doc, item, attrs, obj)
            obj.attributes = attrs
            obj.content = "simple"

    def complex_content(self, doc: _Document, el, obj: ComplexType) -> None:
        if el.get("mixed") is not None:
            obj.mixed = el.get("mixed") == "true"
        for child in el:
            tag = _local(child)
            if tag not in ("extension", "restriction"):
                continue
            base = self.lookup("type", self.qname(child, child.get("base")))
            if not isinstance(base, ComplexType):
                raise SchemaError(f"complexContent of {obj.label} over simple type")
            obj.base = base
            attrs = list(base.attributes)
            obj.attribute_wildcard = base.attribute_wildcard
            own = None
            for item in child:
                itag = _local(item)
                if itag in ("sequence", "choice", "all", "group"):
                    own = self.particle(doc, item)
                elif itag in ("attribute", "attributeGroup", "anyAttribute"):
                    self.attribute_item(doc, item, attrs, obj)
            obj.attributes = attrs
            if tag == "extension":
                parts = [p for p in (base.particle, own) if p is not None and not _is_empty_particle(p)]
                if len(parts) == 2:
                    particle = Particle(1, 1, ModelGroup("sequence", parts))
                else:
                    particle = parts[0] if parts else None
                if base.mixed:
                    obj.mixed = True
            else:
                particle = own
            self.set_particle(obj, particle)

    def attribute_item(self, doc: _Document, el, attrs: list, obj: ComplexType) -> None:
        tag = _local(el)
        if tag == "anyAttribute":
            obj.attribute_wildcard = self.wildcard(doc, el)
            return
        if tag == "attributeGroup":
            gdoc, group = self.lookup("attributeGroup", self.qname(el, el.get("ref")))
            for item in group:
                if _local(item) in ("attribute", "attributeGroup", "anyAttribute"):
                    self.attribute_item(gdoc, item, attrs, obj)
            return
        use = el.get("use", "optional")
        if el.get("ref"):
            qn = self.qname(el, el.get("ref"))
            if qn[0] == XML_NS:
                atype = builtin_type("string")
            else:
                adoc, adecl = self.lookup("attribute", qn)
                atype = self.attribute_type(adoc, adecl)
            name, ns = qn[1], qn[0]
        else:
            form = el.get("form")
            qualified = form == "qualified" if form else doc.attribute_qualified
            name, ns = el.get("name"), (doc.tns if qualified else "")
            atype = self.attribute_type(doc, el)
        for i, old in enumerate(attrs):
            if old.qname == (ns, name):
                del attrs[i]
                break
        if use == "prohibited":
            return
        au = AttributeUse(name, ns, atype, required=use == "required")
        attrs.append(au)
        self.set.attributes.append(au)

    def attribute_type(self, doc: _Document, el) -> SimpleType:
        if el.get("type"):
            return self.lookup("simpleType", self.qname(el, el.get("type")))
        sub = el.find(_xs("simpleType"))
        if sub is None:
            return builtin_type("anySimpleType")
        st = SimpleType(None)
        self.fill_simple(doc, sub, st)
        return st

    # particles
    def particle(self, doc: _Document, el) -> Particle:
        tag = _local(el)
        lo = int(el.get("minOccurs", "1"))
        hi_text = el.get("maxOccurs", "1")
        hi = UNBOUNDED if hi_text == "unbounded" else int(hi_text)
        if tag == "element":
            term = self.local_element(doc, el)
        elif tag == "any":
            term = self.wildcard(doc, el)
        elif tag == "group":
            gdoc, group = self.lookup("group", self.qname(el, el.get("ref")))
            inner = [c for c in group if _local(c) in ("sequence", "choice", "all")]
            sub = self.particle(gdoc, inner[0])
            term = sub.term
        else:
            term = ModelGroup(tag)
            for child in el:
                ctag = _local(child)
                if ctag in ("element", "any", "group", "sequence", "choice", "all"):
                    p = self.particle(doc, child)
                    if p.max is None or p.max > 0:
                        term.particles.append(p)
        return Particle(lo, hi, term)

    def wildcard(self, doc: _Document, el) -> Wildcard:
        spec = el.get("namespace", "##any").split()
        if spec == ["##any"]:
            return Wildcard("any")
        if spec == ["##other"]:
            return Wildcard("not", (doc.tns,))
        uris = []
        for token in spec:
            if token == "##targetNamespace":
                uris.append(doc.tns)
            elif token == "##local":
                uris.append("")
            else:
                uris.append(token)
        self.set.wildcard_namespaces.update(uris)
        return Wildcard("set", tuple(uris))

    def finish(self) -> SchemaSet:
        for kind, qn in list(self.top):
            if kind in ("element", "complexType", "simpleType"):
                self.lookup(kind, qn)
        subs: dict[QName, list[ElementDecl]] = {}
        for decl in self.set.elements.values():
            head = decl.head
            seen = set()
            while head is not None and id(head) not in seen:
                seen.add(id(head))
                subs.setdefault(head.qname, []).append(decl)
                head = head.head
        self.set.substitutes = subs
        return self.set


def _bound(value: str):
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        try:
            from decimal import Decimal  # only decimal bounds need it

            return Decimal(text)
        except ArithmeticError:
            return text


def _is_empty_particle(p: Particle) -> bool:
    if isinstance(p.term, ModelGroup):
        return all(_is_empty_particle(c) for c in p.term.particles) or p.max == 0
    return p.max == 0


def read_schema_set(name: str, entry_files: list[Path]) -> SchemaSet:
    """
    Read a schema set (:func:`evsev2g.exi.xsd.load_schema_set`).

    :param name: the set's name, used in messages.
    :param entry_files: the schema files to start from; everything they
        import or include (from the same folder) is read too.
    :returns: the :class:`SchemaSet`.
    :raises SchemaError: on unreadable files, unresolvable references or
        constructs EXI grammars cannot be built for.
    """
    reader = _Reader(name)
    for path in entry_files:
        reader.load(Path(path))
    return reader.finish()
