"""
Building the grammar of a complex type (``TypeBuilder``): the position tree
of its content model, the states and their event codes (§8.5.4).

Only a codec build builds grammars: a codec loaded from the cache has them
all, so this module loads only then (see :meth:`evsev2g.exi.grammar.GrammarSet.grammar`).
"""

from __future__ import annotations

from evsev2g.exi.errors import SchemaError
from evsev2g.exi.grammar import (EV_AT, EV_CH, EV_EE, EV_SE, EV_SE_ANY, EV_SE_URI, MAX_GROUP_COPIES, GrammarSet, Leaf,
                                 State, TypeGrammar)
from evsev2g.exi.message import Shape
from evsev2g.exi.xsd import ComplexType, ElementDecl, ModelGroup, Particle, Wildcard

__all__ = ["TypeBuilder"]


# -- the position tree ------------------------------------------------------

class _Node:
    __slots__ = ("kind", "children", "parent", "leaf")

    def __init__(self, kind: str, children=(), leaf=None) -> None:
        self.kind = kind            # seq, choice, star, opt, leaf
        self.children = list(children)
        self.parent = None
        self.leaf = leaf
        for c in self.children:
            c.parent = self


def _leaf_names(leaf: Leaf) -> list:
    return [alt.qname for alt in leaf.alternatives]


class TypeBuilder:
    """Builds one :class:`TypeGrammar` (see the module docstring)."""

    def __init__(self, gset: "GrammarSet", ctype: ComplexType, name: str) -> None:
        self.gset = gset
        self.g = TypeGrammar(ctype, name)

    def build(self) -> TypeGrammar:
        g = self.g
        ctype = g.type
        if ctype.attribute_wildcard is not None:
            raise SchemaError(f"{g.name}: attribute wildcards are not supported")
        root = None
        if ctype.content == "element":
            root = self.tree(ctype.particle)
            self.check_forward(root)
        # first set of the content
        if ctype.content == "element":
            first, nullable = self.first(root)
            content_events = [self.se_event(leaf) for leaf in first]
            content_events = [e for evs in content_events for e in evs]
            if nullable:
                content_events.append((EV_EE, None))
        elif ctype.content == "simple":
            content_events = [(EV_CH, None)]
        else:
            content_events = [(EV_EE, None)]
        if ctype.mixed:
            content_events.append((EV_CH, None))
        # attribute states A_0 .. A_n
        n = len(g.attributes)
        for i in range(n + 1):
            events = []
            for j in range(i, n):
                events.append((EV_AT, j))
                if g.attributes[j].required:
                    break
            else:
                events.extend(content_events)
            phase = "first" if i == 0 else "start"
            label = f"start (before attribute {g.attributes[i].name})" if i < n else "content start"
            g.states.append(State(i, label, self.order(events), phase))
        for j in range(n):
            g.after_attr[j] = j + 1
        if ctype.content == "simple":
            end = State(len(g.states), "after character content", [(EV_EE, None)], "content")
            g.states.append(end)
            g.simple_end = end.index
            for st in g.states[: n + 1]:
                if st.has(EV_CH):
                    st.ch_target = end.index
        elif ctype.mixed:
            for st in g.states[: n + 1]:
                st.ch_target = n
        if ctype.content == "element":
            for leaf in g.leaves:
                own = self.se_event(leaf)
                rest = self.cont(leaf.node)
                for cls in leaf.classes():
                    events = []
                    if cls in ("lt", "mid"):
                        events.extend(own)
                    if cls in ("mid", "max"):
                        events.extend(rest)
                    if ctype.mixed:
                        events.append((EV_CH, None))
                    st = State(len(g.states), f"after {self.leaf_label(leaf)} ({cls})", self.order(events),
                               "content")
                    if ctype.mixed:
                        st.ch_target = st.index
                    g.states.append(st)
                    g.after_leaf[(leaf.index, cls)] = st.index
        self.check_unique(g)
        g.shape = _shape(g)
        return g

    def leaf_label(self, leaf: Leaf) -> str:
        if leaf.wildcard is not None:
            return "wildcard"
        return leaf.alternatives[0].name if len(leaf.alternatives) == 1 else \
            f"{leaf.alternatives[0].name}|…"

    # tree
    def tree(self, particle: Particle) -> _Node:
        term = particle.term
        if isinstance(term, (ElementDecl, Wildcard)):
            leaf = Leaf(len(self.g.leaves), particle.min, particle.max)
            if isinstance(term, Wildcard):
                leaf.wildcard = term
            else:
                leaf.alternatives = self.gset.substitution_list(term)
            self.g.leaves.append(leaf)
            node = _Node("leaf", leaf=leaf)
            leaf.node = node
            return node
        lo, hi = particle.min, particle.max
        if lo == 1 and hi == 1:
            return self.group(term)
        copies = []
        for _ in range(lo):
            copies.append(self.group(term))
        if hi is None:
            copies.append(_Node("star", [self.group(term)]))
        else:
            if hi - lo > MAX_GROUP_COPIES or lo > MAX_GROUP_COPIES:
                raise SchemaError(f"{self.g.name}: model group repeated {hi} times is too large")
            for _ in range(hi - lo):
                copies.append(_Node("opt", [self.group(term)]))
        return _Node("seq", copies)

    def group(self, term: ModelGroup) -> _Node:
        kids = [self.tree(p) for p in term.particles]
        if term.kind == "sequence":
            return _Node("seq", kids)
        if term.kind == "choice":
            return _Node("choice", kids)
        # xs:all: any order, each at most as declared; approximated as a loop of a choice
        return _Node("star", [_Node("choice", kids)])

    def first(self, node: _Node) -> tuple[list, bool]:
        if node.kind == "leaf":
            return [node.leaf], node.leaf.min == 0
        if node.kind == "seq":
            out = []
            for c in node.children:
                f, nullable = self.first(c)
                out.extend(f)
                if not nullable:
                    return out, False
            return out, True
        if node.kind == "choice":
            out, any_null = [], not node.children
            for c in node.children:
                f, nullable = self.first(c)
                out.extend(f)
                any_null = any_null or nullable
            return out, any_null
        f, _ = self.first(node.children[0])
        return f, True

    def cont(self, node: _Node) -> list:
        """Events that may follow ``node`` once it is complete, in code order."""
        out: list = []
        seen: set = set()
        while True:
            parent = node.parent
            if parent is None:
                self.add(out, seen, [(EV_EE, None)])
                return out
            if parent.kind == "seq":
                idx = parent.children.index(node)
                for sib in parent.children[idx + 1:]:
                    f, nullable = self.first(sib)
                    self.add(out, seen, [e for leaf in f for e in self.se_event(leaf)])
                    if not nullable:
                        return out
            elif parent.kind == "star":
                f, _ = self.first(parent.children[0])
                self.add(out, seen, [e for leaf in f for e in self.se_event(leaf)])
            node = parent

    @staticmethod
    def add(out: list, seen: set, events: list) -> None:
        for ev in events:
            if ev not in seen:
                seen.add(ev)
                out.append(ev)

    def se_event(self, leaf: Leaf) -> list:
        if leaf.wildcard is None:
            return [(EV_SE, (leaf.index, k)) for k in range(len(leaf.alternatives))]
        w = leaf.wildcard
        if w.mode == "set":
            return [(EV_SE_URI, (leaf.index, uri)) for uri in w.namespaces]
        return [(EV_SE_ANY, leaf.index)]

    @staticmethod
    def order(events: list) -> list:
        rank = {EV_AT: 0, EV_SE: 1, EV_SE_URI: 2, EV_SE_ANY: 3, EV_EE: 4, EV_CH: 5}
        out = sorted(events, key=lambda e: (rank[e[0]], e[1][1] if e[0] == EV_SE_URI else ""))
        # one SE(*) / EE / CH per state
        dedup, seen = [], set()
        for ev in out:
            key = ev[0] if ev[0] in (EV_SE_ANY, EV_EE, EV_CH) else ev
            if key not in seen:
                seen.add(key)
                dedup.append(ev)
        return dedup

    def check_forward(self, root: _Node) -> None:
        def walk(node: _Node) -> None:
            if node.kind == "star" and self.count_leaves(node) > 1:
                self.g.forward = False
            for c in node.children:
                walk(c)
        walk(root)

    def count_leaves(self, node: _Node) -> int:
        return 1 if node.kind == "leaf" else sum(self.count_leaves(c) for c in node.children)

    def check_unique(self, g: TypeGrammar) -> None:
        names: dict = {}
        for leaf in g.leaves:
            if leaf.wildcard is not None:
                g.unique_names = False
            for qn in _leaf_names(leaf):
                if qn[1] in names and names[qn[1]] != leaf.index:
                    g.unique_names = False
                names[qn[1]] = leaf.index
        for st in g.states:
            seen = {}
            for ev in st.events:
                if ev[0] == EV_SE:
                    leaf_i, alt = ev[1]
                    qn = g.leaves[leaf_i].alternatives[alt].qname
                    if qn in seen and seen[qn] != leaf_i:
                        raise SchemaError(f"{g.name}: ambiguous content model at {st.label} ({qn[1]})")
                    seen[qn] = leaf_i


def _shape(g: TypeGrammar) -> Shape:
    declared, repeated = set(), set()
    for leaf in g.leaves:
        for alt in leaf.alternatives:
            declared.add(alt.name)
            if leaf.max is None or leaf.max > 1 or _in_loop(leaf):
                repeated.add(alt.name)
    for au in g.attributes:
        declared.add(au.name)
    return Shape(declared, repeated)


def _in_loop(leaf: Leaf) -> bool:
    node = leaf.node.parent
    while node is not None:
        if node.kind == "star":
            return True
        node = node.parent
    return False
