"""
Grammars → specialised Python source for decoding and encoding.

For every complex type of a schema set, one decoder and one encoder
function are generated (straight-line code over the type's states, with
the event-code tables, value reads and writes inlined); the codec compiles
them once per schema set and keeps each type's pair.  The stream and output
are single ints (see the module docstring of ``bits``):

* decoders: ``d_<Type>(v, n, p, x, name, ns) -> (Message, p)`` read from the
  stream int ``v`` of ``n`` bits at offset ``p``; ``x`` is the per-call
  :class:`~evsev2g.exi.runtime.DecodeContext`.
* encoders: ``e_<Type>(node, acc, nb) -> (acc, nb)`` append to the
  accumulator int ``acc`` holding ``nb`` bits.

Target ids used in the decode tables: element alternatives are
``0 … k-1`` (in leaf document order), ``1000 + i`` is attribute ``i``,
``-1`` EE, ``-2`` CH, ``-3`` an unused code, ``-(10 + s)`` the escape of
state ``s``.
"""

from __future__ import annotations

from evsev2g.exi.grammar import (EV_AT, EV_CH, EV_EE, EV_SE, EV_SE_ANY, EV_SE_URI, GrammarSet,
                                 TypeGrammar)
from evsev2g.exi.values import representation
from evsev2g.exi.xsd import ComplexType, SimpleType

__all__ = ["generate", "function_name", "EE", "CH", "BAD", "AT_BASE", "ESC_BASE", "WINDOW"]

EE, CH, BAD, AT_BASE, ESC_BASE = -1, -2, -3, 1000, -10

_FIXED = ("nbit", "bool", "enum")


class _Source:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


class Generator:
    """
    Collects the generated source and the constants it refers to.

    :ivar consts: ``{name: object}`` the generated code needs in its globals.
    :ivar src: the source lines.
    """

    def __init__(self, gset: GrammarSet) -> None:
        self.gset = gset
        self.consts: dict = {}
        self.src = _Source()
        self._const_ids: dict = {}
        self.types: list[TypeGrammar] = []
        self.cyclic: set = set()

    def const(self, prefix: str, obj, key=None) -> str:
        """Register a constant, returning its name in the generated code."""
        key = key if key is not None else (prefix, id(obj))
        name = self._const_ids.get(key)
        if name is None:
            name = f"{prefix}{len(self._const_ids)}"
            self._const_ids[key] = name
            self.consts[name] = obj
        return name

    def rep(self, st: SimpleType) -> str:
        """:returns: the name of a simple type's Representation constant."""
        return self.const("R", representation(st), key=("R", id(st)))

    # -- driving -------------------------------------------------------------

    def run(self) -> None:
        """Generate the functions of every complex type reachable in the set."""
        seen = set()
        order = []
        for decl in self.gset.schema.all_elements:
            t = decl.type
            if isinstance(t, ComplexType) and id(t) not in seen:
                seen.add(id(t))
                order.append(self.gset.grammar(t))
        self.types = order
        self.find_cycles()
        for g in order:
            self.decoder(g)
            self.encoder(g)

    def find_cycles(self) -> None:
        graph = {}
        for g in self.types:
            kids = set()
            for leaf in g.leaves:
                for alt in leaf.alternatives:
                    if isinstance(alt.type, ComplexType):
                        kids.add(id(alt.type))
            graph[id(g.type)] = kids
        for start in graph:
            stack, seen = list(graph[start]), set()
            while stack:
                node = stack.pop()
                if node == start:
                    self.cyclic.add(start)
                    break
                if node in seen:
                    continue
                seen.add(node)
                stack.extend(graph.get(node, ()))

    # -- tables -----------------------------------------------------------------

    @staticmethod
    def offsets(g: TypeGrammar) -> list[int]:
        out, k = [], 0
        for leaf in g.leaves:
            out.append(k)
            k += max(1, len(leaf.alternatives))
        return out

    def target(self, g: TypeGrammar, offs: list[int], ev) -> int:
        kind, arg = ev
        if kind == EV_SE:
            return offs[arg[0]] + arg[1]
        if kind == EV_SE_URI:
            return offs[arg[0]]
        if kind == EV_SE_ANY:
            return offs[arg]
        if kind == EV_AT:
            return AT_BASE + arg
        if kind == EV_EE:
            return EE
        return CH

    def state_table(self, g: TypeGrammar, offs: list[int], si: int) -> str:
        st = g.states[si]
        table = [self.target(g, offs, ev) for ev in st.events]
        table.append(ESC_BASE - si)
        table += [BAD] * ((1 << st.width) - len(table))
        return self.const("T", tuple(table), key=("T", tuple(table)))

    def read_state(self, out, ind: int, g: TypeGrammar, offs, si: int, text_loop: bool = True) -> None:
        st = g.states[si]
        w = st.width
        out(ind, f"t = {self.state_table(g, offs, si)}[(v >> (n - p - {w})) & {(1 << w) - 1}]; p += {w}")
        if text_loop and g.type.mixed and st.has(EV_CH):
            out(ind, "while t == -2:")
            out(ind + 1, "s_, p = x.tables.read(v, n, p, None, LIM_STR); ch.append(('#text', s_))")
            self.read_state(out, ind + 1, g, offs, st.ch_target, text_loop=False)

    def enc_tables(self, g: TypeGrammar, offs) -> dict:
        per_target: dict = {}
        for st in g.states:
            for code, ev in enumerate(st.events):
                per_target.setdefault(self.target(g, offs, ev), {})[st.index] = (code, st.width)
        return {t: self.const("C", d) for t, d in per_target.items()}

    # -- decoder ------------------------------------------------------------------

    def decoder(self, g: TypeGrammar) -> None:
        out = self.src
        offs = self.offsets(g)
        ctype = g.type
        shape = self.const("SH", g.shape, key=("SH", id(ctype)))
        gref = self.const("G", g, key=("G", id(g)))
        cyclic = id(ctype) in self.cyclic
        out(0, f"def {function_name(g, 'd')}(v, n, p, x, name, ns):")
        out(1, "x.budget -= 1")
        out(1, "if x.budget < 0: raise over_budget(x, p)")
        if cyclic:
            out(1, "x.depth += 1")
            out(1, "if x.depth > LIM_DEPTH: raise too_deep(p)")
        out(1, "try:")
        ind = 2
        out(ind, "ch = []")
        out(ind, "at = {}")
        out(ind, "val = None")
        if has_loops(g):
            out(ind, f"m_ = p + {WINDOW}")
        self.read_state(out, ind, g, offs, 0)
        for i, au in enumerate(g.attributes):
            out(ind, f"if t == {AT_BASE + i}:")
            self.dec_value(out, ind + 1, au.type, (au.ns, au.name))
            out(ind + 1, f"at[{au.name!r}] = val")
            self.read_state(out, ind + 1, g, offs, g.after_attr[i])
        if ctype.content == "simple":
            out(ind, "if t == -2:")
            self.dec_value(out, ind + 1, ctype.simple_type, None)
            self.read_state(out, ind + 1, g, offs, g.simple_end)
            # no CH: only a second-level EE may end the element (EXIficient's empty value)
            out(ind, "else:")
            out(ind + 1, f"t, p = escape(v, n, p, t, {gref}, x)")
            out(ind + 1, f"val = empty_value({self.rep(ctype.simple_type)}, p)")
        elif ctype.content == "element":
            if not g.forward:
                out(ind, "while True:")
                ind += 1
                trim_stream(out, ind)
            for leaf in g.leaves:
                self.dec_leaf(out, ind, g, offs, leaf)
            if not g.forward:
                out(ind, "if t < 0: break")
                ind -= 1
        out(ind, "if t != -1:")
        out(ind + 1, f"t, p = escape(v, n, p, t, {gref}, x)")
        if cyclic:
            out(ind, "x.depth -= 1")
        if ctype.content == "simple":
            out(ind, f"return mk(name, ns, ch, at, val, {shape}), p")
        else:
            out(ind, f"return mk(name, ns, ch, at, None, {shape}), p")
        out(1, "except ExiError as e:")
        out(2, "raise")
        out(1, "except Exception as e:")
        out(2, f"raise failed(e, p, {g.name!r}) from None")
        out(0, "")

    def dec_leaf(self, out, ind: int, g: TypeGrammar, offs, leaf) -> None:
        lo = offs[leaf.index]
        count = max(1, len(leaf.alternatives))
        cond = f"t == {lo}" if count == 1 else f"{lo} <= t < {lo + count}"
        out(ind, f"if {cond}:")
        classes = leaf.classes()
        needs_count = len(classes) > 1 or leaf.max is None
        if needs_count:
            out(ind + 1, "cnt = 0")
        if leaf.max == 1:
            body = ind + 1
        else:
            out(ind + 1, f"while {cond}:")
            body = ind + 2
            trim_stream(out, body)
        if leaf.wildcard is not None:
            out(body, f"raise wildcard(v, n, p, {self.const('G', g, key=('G', id(g)))})")
        elif count == 1:
            self.dec_alternative(out, body, leaf.alternatives[0])
        else:
            alts = []
            for alt in leaf.alternatives:
                if isinstance(alt.type, ComplexType):
                    alts.append((None, function_name(self.gset.grammar(alt.type), "d"), alt.name, alt.ns))
                else:
                    alts.append((representation(alt.type), None, alt.name, alt.ns))
            table = self.const("A", alts)
            out(body, f"r_, f_, nm_, ns_ = {table}[t - {lo}]")
            dispatch(out, body, "val, p = simple_child(v, n, p, x, r_, (ns_, nm_))",
                     "val, p = globals()[f_](v, n, p, x, nm_, ns_)")
            out(body, "ch.append((nm_, val))")
        if needs_count:
            out(body, "cnt += 1")
            if leaf.max is None:
                out(body, "if cnt > LIM_REPEAT: raise too_many(p, cnt)")
        if len(classes) == 1:
            self.read_state(out, body, g, offs, g.after_leaf[(leaf.index, classes[0])])
        else:
            for keyword, test, cls in count_branches(leaf):
                out(body, f"{keyword} {test}:" if test else "else:")
                self.read_state(out, body + 1, g, offs, g.after_leaf[(leaf.index, cls)])

    def dec_alternative(self, out, ind: int, alt) -> None:
        if isinstance(alt.type, ComplexType):
            fn = function_name(self.gset.grammar(alt.type), "d")
            out(ind, f"val, p = {fn}(v, n, p, x, {alt.name!r}, {alt.ns!r})")
        else:
            self.dec_simple_element(out, ind, alt)
        out(ind, f"ch.append(({alt.name!r}, val))")

    def dec_simple_element(self, out, ind: int, alt) -> None:
        rep = representation(alt.type)
        rname = self.rep(alt.type)
        qn = (alt.ns, alt.name)
        if rep.kind in _FIXED:
            w = rep.width + 2
            out(ind, f"b_ = (v >> (n - p - {w})) & {(1 << w) - 1}")
            out(ind, f"if b_ & {1 << (w - 1) | 1}:")
            out(ind + 1, f"val, p = simple_child(v, n, p, x, {rname}, {qn!r})")
            out(ind, "else:")
            out(ind + 1, f"p += {w}")
            if rep.kind == "bool":
                out(ind + 1, "val = b_ == 2")
            elif rep.kind == "nbit":
                out(ind + 1, f"val = (b_ >> 1) + {rep.lo}")
                if rep.hi - rep.lo + 1 != 1 << rep.width:
                    out(ind + 1, f"if val > {rep.hi}: raise out_of_range(p, {rname}, val)")
            else:
                padded = tuple(rep.values) + (None,) * ((1 << rep.width) - len(rep.values))
                vals = self.const("V", padded, key=("V", id(alt.type)))
                out(ind + 1, f"val = {vals}[b_ >> 1]")
                if len(rep.values) != 1 << rep.width:
                    out(ind + 1, f"if val is None: raise out_of_range(p, {rname}, b_ >> 1)")
            return
        out(ind, "if (v >> (n - p - 1)) & 1:")
        out(ind + 1, f"val, p = simple_child(v, n, p, x, {rname}, {qn!r})")
        out(ind, "else:")
        out(ind + 1, "p += 1")
        self.dec_value(out, ind + 1, alt.type, qn)
        out(ind + 1, "if (v >> (n - p - 1)) & 1: raise bad_end(v, n, p)")
        out(ind + 1, "p += 1")

    def dec_uint(self, out, ind: int, target: str) -> None:
        out(ind, f"{target} = (v >> (n - p - 8)) & 255; p += 8")
        out(ind, f"if {target} > 127: {target}, p = read_uint(v, n, p - 8)")

    def dec_value(self, out, ind: int, st: SimpleType, qn) -> None:
        """Emit code reading one value of ``st`` into ``val``."""
        rep = representation(st)
        rname = self.rep(st)
        kind = rep.kind
        if kind == "uint":
            self.dec_uint(out, ind, "val")
            if rep.hi is not None:
                out(ind, f"if val > {rep.hi}: raise out_of_range(p, {rname}, val)")
            if rep.lo:
                out(ind, f"if val < {rep.lo}: raise out_of_range(p, {rname}, val)")
        elif kind == "int":
            out(ind, "s_ = (v >> (n - p - 1)) & 1; p += 1")
            self.dec_uint(out, ind, "val")
            out(ind, "if s_: val = -val - 1")
            tests = []
            if rep.hi is not None:
                tests.append(f"val > {rep.hi}")
            if rep.lo is not None:
                tests.append(f"val < {rep.lo}")
            if tests:
                out(ind, f"if {' or '.join(tests)}: raise out_of_range(p, {rname}, val)")
        elif kind == "binary":
            self.dec_uint(out, ind, "l_")
            out(ind, "if l_ > LIM_BIN: raise too_long(p, 'binary', l_, LIM_BIN)")
            out(ind, "val = ((v >> (n - p - 8 * l_)) & ((1 << (8 * l_)) - 1)).to_bytes(l_, 'big'); p += 8 * l_")
        elif kind == "string":
            out(ind, f"val, p = x.tables.read(v, n, p, {qn!r}, LIM_STR)")
        elif kind == "nbit":
            w = rep.width
            out(ind, f"val = ((v >> (n - p - {w})) & {(1 << w) - 1}) + {rep.lo}; p += {w}")
            out(ind, f"if val > {rep.hi}: raise out_of_range(p, {rname}, val)")
        elif kind == "bool":
            out(ind, "val = (v >> (n - p - 1)) & 1 == 1; p += 1")
        else:
            out(ind, f"val, p = {rname}.read(v, n, p, x.limits)")
        self.dec_facets(out, ind, rep, rname)

    def dec_facets(self, out, ind: int, rep, rname: str) -> None:
        """
        Emit the check of the facets a decoded value may still break (see
        ``Representation.unchecked``): a breach marks the tree suspect, so
        the complete check looks at it; the decode itself goes on.
        """
        if not rep.unchecked:
            return
        if rep.kind in ("binary", "string"):
            tests = [f"len(val) < {rep.min_len}"] if rep.min_len else []
            if rep.max_len is not None:
                tests.append(f"len(val) > {rep.max_len}")
            out(ind, f"if {' or '.join(tests)}: x.suspect = True")
        else:
            out(ind, f"if not {rname}.fits(val): x.suspect = True")

    # -- encoder ---------------------------------------------------------------------

    def encoder(self, g: TypeGrammar) -> None:
        out = self.src
        offs = self.offsets(g)
        ctype = g.type
        enc = self.enc_tables(g, offs)
        gref = self.const("G", g, key=("G", id(g)))
        out(0, f"def {function_name(g, 'e')}(node, acc, nb):")
        out(1, "s = 0")
        out(1, "i = 0")
        out(1, "kids = ()")
        if splits_output(g):
            out(1, "parts_ = None")
        out(1, "try:")
        ind = 2
        if ctype.content == "simple":
            out(ind, "if node.__class__ is not Message:")
            out(ind + 1, "node = Message('', value=node)")
        else:
            out(ind, "if node.__class__ is not Message: raise not_a_message(node)")
        out(ind, "at = node.attrs")
        if g.attributes:
            out(ind, "used = 0")
            for i, au in enumerate(g.attributes):
                out(ind, f"val = at.get({au.name!r}, MISSING)")
                out(ind, "if val is not MISSING:")
                code = enc.get(AT_BASE + i)
                out(ind + 1, f"c_, w_ = {code}[s]; acc = (acc << w_) | c_; nb += w_")
                self.enc_value(out, ind + 1, au.type, "@" + au.name)
                out(ind + 1, f"s = {g.after_attr[i]}; used += 1")
            names = self.const("GA", [a.name for a in g.attributes], key=("GA", id(g)))
            out(ind, f"if used != len(at): raise unknown_attribute(node, {names})")
        else:
            out(ind, "if at: raise unknown_attribute(node, ())")
        if ctype.content == "simple":
            out(ind, f"c_, w_ = {enc[CH]}[s]; acc = (acc << w_) | c_; nb += w_")
            out(ind, "val = node.value")
            self.enc_value(out, ind, ctype.simple_type, "#value")
            out(ind, f"s = {g.simple_end}")
            out(ind, "if node.children: raise unexpected_children(node)")
        elif ctype.content == "element":
            self.enc_content(out, ind, g, offs, enc)
        else:
            out(ind, "if node.children: raise unexpected_children(node)")
        out(ind, f"c_, w_ = {enc[EE]}[s]; acc = (acc << w_) | c_; nb += w_")
        if splits_output(g):
            out(ind, "if parts_: acc, nb = join_bits(parts_, acc, nb)")
        out(ind, "return acc, nb")
        out(1, "except ExiError as e:")
        out(2, "e.path.insert(0, getattr(node, 'name', '?'))")
        out(2, "raise")
        out(1, "except KeyError:")
        out(2, f"raise misplaced(node, kids, i, s, {gref}) from None")
        out(0, "")

    def enc_content(self, out, ind: int, g: TypeGrammar, offs, enc) -> None:
        sortable = sortable_children(g)
        out(ind, "kids = node.children")
        if sortable:
            order = {}
            for leaf in g.leaves:
                for alt in leaf.alternatives:
                    order[alt.name] = leaf.index
            oname = self.const("O", order)
            out(ind, f"if len(kids) > 1: kids = sorted(kids, key=lambda k_: {oname}[k_[0]])")
        out(ind, "L = len(kids)")
        if not sortable:
            out(ind, "while i < L:")
            ind += 1
            split_output(out, ind)
            out(ind, "start = i")
            if g.type.mixed:
                out(ind, "while i < L and kids[i][0] == '#text':")
                out(ind + 1, f"c_, w_ = {enc[CH]}[s]; acc = (acc << w_) | c_; nb += w_")
                out(ind + 1, "val = kids[i][1]")
                out(ind + 1, "if val.__class__ is not str: raise ExiError(f'text content must be str, not {val!r}')")
                out(ind + 1, "acc, nb = write_uint(acc, nb, len(val) + 2); acc, nb = write_chars(acc, nb, val)")
                ch_next = self.const("CN", {st.index: st.ch_target for st in g.states if st.ch_target is not None},
                                     key=("CN", id(g)))
                out(ind + 1, f"s = {ch_next}[s]; i += 1")
        for leaf in g.leaves:
            self.enc_leaf(out, ind, g, offs, enc, leaf, sortable)
        # the KeyError handler of the encoder explains what is wrong (misplaced()),
        # as it does for a child the current state has no code for
        if sortable:
            # a child left over repeats a leaf too often
            out(ind, "if i < L: raise KeyError(i)")
        else:
            # no leaf took the child at i
            out(ind, "if i == start: raise KeyError(i)")

    def enc_leaf(self, out, ind: int, g: TypeGrammar, offs, enc, leaf, sortable: bool) -> None:
        if leaf.wildcard is not None:
            return
        lo = offs[leaf.index]
        names = [alt.name for alt in leaf.alternatives]
        if len(names) == 1:
            test = f"kids[i][0] == {names[0]!r}"
        else:
            test = f"kids[i][0] in {self.const('N', frozenset(names))}"
        guard = ""
        classes = leaf.classes()
        needs_count = len(classes) > 1
        if not sortable:
            if len(names) == 1:
                guard = f" and s in {enc[lo]}"
            else:
                guard = f" and s in {enc[lo]}" if lo in enc else ""
        out(ind, f"if i < L and {test}{guard}:")
        if leaf.max == 1:
            # one occurrence at most: a second one is left for the check after the
            # leaves (sortable) or the next pass of the content loop
            body = ind + 1
        else:
            if needs_count:
                out(ind + 1, "cnt = 0")
            out(ind + 1, f"while i < L and {test}{guard}:")
            body = ind + 2
            split_output(out, body)
        out(body, "name_, val = kids[i]")
        if len(names) == 1:
            out(body, f"c_, w_ = {enc[lo]}[s]; acc = (acc << w_) | c_; nb += w_")
            self.enc_alternative(out, body, leaf.alternatives[0])
        else:
            table = {}
            for k, alt in enumerate(leaf.alternatives):
                fn = function_name(self.gset.grammar(alt.type), "e") if isinstance(alt.type, ComplexType) else None
                codes = self.consts[enc[lo + k]] if lo + k in enc else {}
                table[alt.name] = (codes, fn, representation(alt.type) if fn is None else None)
            tname = self.const("B", table)
            out(body, f"codes_, f_, r_ = {tname}[name_]")
            out(body, "c_, w_ = codes_[s]; acc = (acc << w_) | c_; nb += w_")
            dispatch(out, body, "acc, nb = simple_write(acc, nb, r_, val, name_)",
                     "acc, nb = globals()[f_](val, acc, nb)")
        out(body, "i += 1")
        if needs_count:
            out(body, "cnt += 1")
            for keyword, test, cls in count_branches(leaf):
                out(body, (f"{keyword} {test}: " if test else "else: ") + f"s = {g.after_leaf[(leaf.index, cls)]}")
        else:
            out(body, f"s = {g.after_leaf[(leaf.index, classes[0])]}")

    def enc_alternative(self, out, ind: int, alt) -> None:
        if isinstance(alt.type, ComplexType):
            fn = function_name(self.gset.grammar(alt.type), "e")
            out(ind, f"acc, nb = {fn}(val, acc, nb)")
            return
        rep = representation(alt.type)
        rname = self.rep(alt.type)
        name = alt.name
        if rep.kind == "nbit":
            w = rep.width + 2
            out(ind, f"if val.__class__ is not int or not {rep.lo} <= val <= {rep.hi}: "
                     f"raise bad_value({rname}, val, {name!r})")
            out(ind, f"acc = (acc << {w}) | ((val - {rep.lo}) << 1); nb += {w}")
        elif rep.kind == "enum":
            idx = self.const("I", rep.index, key=("I", id(alt.type)))
            w = rep.width + 2
            out(ind, f"k_ = {idx}.get(val) if val.__class__ is {type(rep.values[0]).__name__} else None")
            out(ind, f"if k_ is None: raise bad_value({rname}, val, {name!r})")
            out(ind, f"acc = (acc << {w}) | (k_ << 1); nb += {w}")
        elif rep.kind == "bool":
            out(ind, f"if val.__class__ is not bool: raise bad_value({rname}, val, {name!r})")
            out(ind, "acc = (acc << 3) | (val << 1); nb += 3")
        elif rep.kind == "uint" and not rep.facets.get("totalDigits"):
            lo = rep.lo or 0
            hi = f" or val > {rep.hi}" if rep.hi is not None else ""
            out(ind, f"if val.__class__ is not int or val < {lo}{hi}: raise bad_value({rname}, val, {name!r})")
            out(ind, "if val < 128: acc = (acc << 9) | val; nb += 9")
            out(ind, "else: acc, nb = write_uint(acc << 1, nb + 1, val)")
            out(ind, "acc <<= 1; nb += 1")
        elif rep.kind == "int" and not rep.facets.get("totalDigits"):
            bounds = "".join(f" or val {op} {bound}" for op, bound in (("<", rep.lo), (">", rep.hi)) if bound is not None)
            out(ind, f"if val.__class__ is not int{bounds}: raise bad_value({rname}, val, {name!r})")
            # CH, the sign bit, the magnitude (minus one when negative), EE
            out(ind, "if val < 0: acc = (acc << 2) | 1; m_ = -val - 1")
            out(ind, "else: acc <<= 2; m_ = val")
            out(ind, "if m_ < 128: acc = (acc << 9) | (m_ << 1); nb += 11")
            out(ind, "else: acc, nb = write_uint(acc, nb + 2, m_); acc <<= 1; nb += 1")
        elif rep.kind == "binary":
            tests = [f"len(val) < {rep.min_len}"] if rep.min_len else []
            if rep.max_len is not None:
                tests.append(f"len(val) > {rep.max_len}")
            length = f" or {' or '.join(tests)}" if tests else ""
            out(ind, f"if not isinstance(val, (bytes, bytearray)){length}: raise bad_value({rname}, val, {name!r})")
            # CH, the length, the octets, EE
            out(ind, "l_ = len(val)")
            out(ind, "if l_ < 128: acc = (acc << 9) | l_; nb += 9")
            out(ind, "else: acc, nb = write_uint(acc << 1, nb + 1, l_)")
            out(ind, "acc = (((acc << (8 * l_)) | int.from_bytes(val, 'big')) << 1); nb += 8 * l_ + 1")
        else:
            out(ind, f"acc, nb = simple_write(acc, nb, {rname}, val, {name!r})")

    def enc_value(self, out, ind: int, st: SimpleType, label: str) -> None:
        """Emit code checking and writing ``val`` (no CH/EE around it)."""
        rname = self.rep(st)
        out(ind, f"acc, nb = value_write(acc, nb, {rname}, val, {label!r})")


#: Bits read or written in a loop before the stream int is trimmed or the
#: output int set aside.  The stream and the output are single Python ints,
#: and shifting one costs time in proportion to its length; without this,
#: long lists (1024 PMaxScheduleEntry) would cost time quadratic in the
#: message size.
WINDOW = 8192


def has_loops(g: TypeGrammar) -> bool:
    """Whether a type's decoder has loops (repeated leaves, or loops over groups)."""
    return not g.forward or any(leaf.max != 1 for leaf in g.leaves)


def sortable_children(g: TypeGrammar) -> bool:
    """Whether the encoder may put hand-built children in schema order by name."""
    return g.forward and g.unique_names and not g.type.mixed


def splits_output(g: TypeGrammar) -> bool:
    """Whether a type's encoder has loops (see :func:`split_output`)."""
    return g.type.content == "element" and (not sortable_children(g)
                                            or any(leaf.max != 1 for leaf in g.leaves))


def trim_stream(out, ind: int) -> None:
    """
    Emit, at the top of a decode loop: once more than :data:`WINDOW` bits
    were read since the last trim, clear the bits before ``p`` in the local
    stream int, so that the shifts of later reads cost only what lies
    between the trim and the read (bit offsets do not change).
    """
    out(ind, f"if p > m_: v &= (1 << (n - p)) - 1; m_ = p + {WINDOW}")


def split_output(out, ind: int) -> None:
    """
    Emit, at the top of an encode loop: once the output int holds more than
    :data:`WINDOW` bits, set it aside in ``parts_`` and go on with an empty
    one; ``join_bits`` puts the parts together before the function returns.
    """
    out(ind, f"if nb > {WINDOW}: parts_ = (parts_ or []) + [(acc, nb)]; acc = 0; nb = 0")


def count_branches(leaf) -> list:
    """
    How generated code picks the state after an occurrence of a repeatable
    leaf from its count: ``[(keyword, test, count class)]`` forming an
    ``if``/``elif``/``else`` chain.
    """
    tests = []
    for cls in leaf.classes():
        if cls == "lt":
            tests.append((f"cnt < {leaf.min}", cls))
        elif cls == "max":
            tests.append((f"cnt >= {leaf.max}", cls))
    branches = [("if" if i == 0 else "elif", test, cls) for i, (test, cls) in enumerate(tests)]
    if "mid" in leaf.classes():
        branches.append(("else", None, "mid"))
    return branches


def dispatch(out, ind: int, simple_stmt: str, complex_stmt: str) -> None:
    """Emit the branch between a simple-typed (``f_ is None``) and a complex alternative."""
    out(ind, "if f_ is None:")
    out(ind + 1, simple_stmt)
    out(ind, "else:")
    out(ind + 1, complex_stmt)


def function_name(g: TypeGrammar, kind: str) -> str:
    """Name of a type's generated decoder (``kind`` ``"d"``) or encoder (``"e"``)."""
    return f"{kind}_{g.name}".replace("-", "_").replace(".", "_")


def generate(gset: GrammarSet) -> tuple[str, dict, Generator]:
    """
    Generate the decoder and encoder source of a grammar set.

    :param gset: the :class:`~evsev2g.exi.grammar.GrammarSet`.
    :returns: ``(source, constants, generator)``; the source must be
        executed in a namespace holding the constants and the helpers of
        :func:`~evsev2g.exi.runtime.runtime_namespace`.
    """
    gen = Generator(gset)
    gen.run()
    return "\n".join(gen.src.lines) + "\n", gen.consts, gen


