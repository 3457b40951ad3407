"""
The element fragment grammar (EXI 1.0 §8.5.3).

An EXI fragment (§8.5.2) gives every element qname of the schema set one
event code.  When a qname is declared more than once with different types
(ISO 15118-2 ``{MsgBody}eMAID`` is ``EMAIDType`` in
CertificateInstallationRes and ``eMAIDType`` in PaymentDetailsReq), its
content is coded with this relaxed grammar instead of a type grammar:

* ElementFragment0: ``AT(A0..Am)`` (every attribute qname of the set,
  sorted), ``AT(*)``, ``SE(F0..Fn)`` (every element qname), ``SE(*)``,
  ``EE``, ``CH`` [untyped], then the escape;
* after content (``SE``/``CH``): ``SE(F0..Fn)``, ``SE(*)``, ``EE``, ``CH``,
  then the escape.

This path is used only for such fragment roots (signature digests), so it
is written as plain code, not generated.
"""

from __future__ import annotations

from evsev2g.exi.bits import BitReader, BitWriter
from evsev2g.exi.errors import ExiError
from evsev2g.exi.grammar import GrammarSet, code_width
from evsev2g.exi.message import Message
from evsev2g.exi.values import representation, write_chars
from evsev2g.exi.xsd import ComplexType

__all__ = ["ElementFragmentGrammar"]


class ElementFragmentGrammar:
    """
    Codes element content with the element fragment grammar of one set.

    :ivar attributes: ``[(qname, SimpleType or None)]`` in AT code order.
    :ivar elements: ``[(qname, [declarations])]`` in SE code order.
    """

    def __init__(self, gset: GrammarSet) -> None:
        """:param gset: the grammar set whose qnames the grammar lists."""
        self.gset = gset
        self.attributes = gset.fragment_attributes()
        self.elements = gset.fragment_elements
        m, n = len(self.attributes), len(self.elements)
        # ElementFragment0: m AT, AT(*), n SE, SE(*), EE, CH (+ escape)
        self.width0 = code_width(m + 1 + n + 1 + 1 + 1 + 1)
        self.at_any0, self.se0, self.se_any0 = m, m + 1, m + 1 + n
        self.ee0, self.ch0 = m + n + 2, m + n + 3
        # after content: n SE, SE(*), EE, CH (+ escape)
        self.width1 = code_width(n + 1 + 1 + 1 + 1)
        self.se_any1, self.ee1, self.ch1 = n, n + 1, n + 2

    # -- decoding ------------------------------------------------------------

    def decode(self, r: BitReader, x, qname, child_decoder) -> Message:
        """
        Decode the content of element ``qname`` (its SE was already read).

        :param r: the reader; :param x: the decode context.
        :param child_decoder: ``f(reader, qname_index) -> value`` decoding a
            child element's content with the fragment rules.
        :returns: the element as a :class:`Message`.
        """
        attrs, children, value = {}, [], None
        state0 = True
        n = len(self.elements)
        while True:
            start = r.p
            if state0:
                code = r.bits(self.width0)
                if code < self.at_any0:
                    qn, st = self.attributes[code]
                    if st is None or representation(st).kind == "string":
                        val, r.p = x.tables.read(r.v, r.n, r.p, qn, x.limits.max_string)
                    else:
                        val, r.p = representation(st).read(r.v, r.n, r.p, x.limits)
                    attrs[qn[1]] = val
                    continue
                code -= self.se0  # the content events share the layout of the later state
            else:
                code = r.bits(self.width1)
            state0 = False
            if 0 <= code < n:
                children.append(child_decoder(r, code))
            elif code == self.ee1:
                break
            elif code == self.ch1:
                text, r.p = x.tables.read(r.v, r.n, r.p, qname, x.limits.max_string)
                children.append(("#text", text))
            else:
                raise ExiError("wildcard or second-level event in an element fragment is not supported",
                               bit=start, context="ElementFragment")
        if len(children) == 1 and children[0][0] == "#text":
            value, children = children[0][1], []
        return Message(qname[1], children, ns=qname[0], attrs=attrs, value=value)

    # -- encoding --------------------------------------------------------------

    def attribute_qname(self, decls, local: str):
        """The attribute qname a local name stands for on an element with these declarations."""
        for decl in decls:
            if isinstance(decl.type, ComplexType):
                for au in decl.type.attributes:
                    if au.name == local:
                        return au.qname
        matches = [qn for qn, _ in self.attributes if qn[1] == local]
        if len(matches) == 1:
            return matches[0]
        raise ExiError(f"attribute {local!r} is ambiguous in an element fragment")

    def encode(self, w: BitWriter, node: Message, decls, child_encoder) -> None:
        """
        Encode ``node``'s content (its SE was already written).

        :param child_encoder: ``f(writer, name, value)`` writing a child's
            SE code and content with the fragment rules.
        """
        at_index = {qn: i for i, (qn, _) in enumerate(self.attributes)}
        order = sorted(((at_index[self.attribute_qname(decls, k)], k, v) for k, v in node.attrs.items()))
        for idx, local, val in order:
            w.bits(idx, self.width0)
            st = self.attributes[idx][1]
            rep = representation(st) if st is not None else None
            if rep is None or rep.kind == "string":
                if not isinstance(val, str):
                    raise ExiError(f"attribute {local} must be str", path=["@" + local])
                w.uint(len(val) + 2)
                w.acc, w.nb = write_chars(w.acc, w.nb, val)
            else:
                rep.check(val)
                w.acc, w.nb = rep.write(w.acc, w.nb, val)
        state0 = True
        content = list(node.children)
        if node.value is not None:
            content.insert(0, ("#text", node.value))
        for name, val in content:
            if name == "#text":
                if not isinstance(val, str):
                    raise ExiError("untyped character content must be str", path=[node.name])
                w.bits(self.ch0 if state0 else self.ch1, self.width0 if state0 else self.width1)
                w.uint(len(val) + 2)
                w.acc, w.nb = write_chars(w.acc, w.nb, val)
            else:
                child_encoder(w, name, val, self.se0 if state0 else 0, self.width0 if state0 else self.width1)
            state0 = False
        w.bits(self.ee0 if state0 else self.ee1, self.width0 if state0 else self.width1)
