"""
Random valid instances of a schema set, drawn from the schema model.

The generator works on the XSD model of :mod:`evsev2g.exi.xsd` (particles,
model groups, element declarations with their substitution groups, facets),
not on the EXI grammars, so the tests that use it check the grammars instead
of repeating them.  It is shared by the property tests (driven by
Hypothesis) and the differential tests against EXIficient (driven by a
seeded :class:`random.Random`): both give their choices through a small
*chooser* object.

What it covers, steered by a :class:`Profile`:

* every optional element, attribute and group copy (``optional=1``) or none
  (``optional=0``), every member of a substitution group and every branch of
  a choice (uniformly), every enumeration value;
* repetitions up to maxOccurs (20 AppProtocols, 1024 PMaxScheduleEntry …)
  within an element budget, and long unbounded loops;
* integers at and next to their facet bounds and at the EXI byte-group and
  machine-word edges; strings and binaries at their length bounds and long
  ones; strings with XML-special, whitespace, non-ASCII and astral
  characters where the type allows them;
* character data in mixed content (xmldsig), never whitespace-only and
  never two text chunks in a row (XML could not keep them apart).

Wildcard content (``xs:any``) is never generated: the engine does not code
it (as libcbv2g does not); an optional wildcard is left out and a required
one makes its type unproducible, so it is avoided.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from evsev2g.exi.message import Message
from evsev2g.exi.xsd import ComplexType, ElementDecl, ModelGroup, Particle, SchemaSet, SimpleType, Wildcard

__all__ = ["Coverage", "Profile", "TYPICAL", "FULL", "MINIMAL", "EXTREME", "SMALL", "PROFILES",
           "RandomChooser", "HypothesisChooser", "InstanceGenerator"]


@dataclass(frozen=True)
class Profile:
    """
    How a generated instance is shaped.

    :ivar optional: chance that an optional element, attribute or group copy
        is present.
    :ivar repeat_max: chance that a repeatable particle goes to its maximum
        (bounded) or to a long run (unbounded).
    :ivar repeat_cap: never more occurrences of one particle than this.
    :ivar unbounded: the count a long run of an unbounded particle reaches.
    :ivar extreme: chance that a value sits at a facet bound or an edge.
    :ivar text_max: longest string drawn where the type has no maxLength.
    :ivar binary_max: longest binary drawn where the type has no maxLength.
    :ivar budget: size per instance, counted in elements plus one per 8
        characters or 16 bytes of values; past it only what is mandatory is
        generated.
    :ivar depth: deepest nesting before only mandatory content is generated.
    """

    optional: float = 0.5
    repeat_max: float = 0.1
    repeat_cap: int = 1024
    unbounded: int = 12
    extreme: float = 0.25
    text_max: int = 40
    binary_max: int = 48
    budget: int = 3000
    depth: int = 14


#: Everyday messages: half the optional parts, short values.
TYPICAL = Profile()
#: Every optional part present.
FULL = Profile(optional=1.0, repeat_max=0.05)
#: Only what is mandatory.
MINIMAL = Profile(optional=0.0, repeat_max=0.0, extreme=0.5)
#: Maximum repetitions, values at their bounds, long strings and binaries.
EXTREME = Profile(optional=0.8, repeat_max=0.5, unbounded=40, extreme=0.7, text_max=300, binary_max=1200,
                  budget=2500)
#: Small instances for Hypothesis (its buffer cannot hold 1024 repetitions).
SMALL = Profile(repeat_cap=6, unbounded=4, text_max=12, binary_max=24, budget=300)

#: Profiles a differential run mixes, with their weights.
PROFILES = ((TYPICAL, 55), (FULL, 15), (MINIMAL, 10), (EXTREME, 20))


class RandomChooser:
    """Choices from a seeded :class:`random.Random` (fast, reproducible)."""

    def __init__(self, seed) -> None:
        """:param seed: anything :class:`random.Random` accepts."""
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        """:returns: an integer in ``[lo, hi]``."""
        return self.rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        """:returns: ``True`` with probability ``p``."""
        return p >= 1.0 or (p > 0.0 and self.rng.random() < p)


class HypothesisChooser:
    """Choices drawn through Hypothesis (shrinkable)."""

    def __init__(self, draw) -> None:
        """:param draw: the ``draw`` function of a ``@st.composite`` strategy."""
        from hypothesis import strategies as st
        self._st = st
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        """:returns: an integer in ``[lo, hi]``."""
        return self.draw(self._st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        """:returns: ``True`` with probability about ``p``."""
        if p >= 1.0 or p <= 0.0:
            return p >= 1.0
        return self.draw(self._st.integers(0, 999)) < p * 1000


# -- characters -------------------------------------------------------------------

_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_PUNCT = " .:-_/#*+,;=?!()[]{}@$%^~|`<>&\"'"
_SPACE = " \t\n\r"
_WIDE = "äéß€中\u00a0\u0085\u2028\ufeff\u007f"
_ASTRAL = "\U0001f600\U00010000\U0010fffd\U0001d11e"
_NAME_START = "abcXYZ_é"
_NAME_MORE = "abcXYZ019_.-é"
_URI = "abcxyzABC0123456789:/#?=&._-~%"

_EDGE_MAGNITUDES = [0, 1, 2, 63, 64, 127, 128, 255, 256, 4095, 4096, 16383, 16384, 2 ** 21 - 1, 2 ** 21,
                    2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1,
                    2 ** 64, 2 ** 70, 2 ** 127, 2 ** 128 + 1]

#: Stand-in bound for integer types without one (xs:integer, X509SerialNumber).
UNBOUNDED_INT = 2 ** 130

_INTEGER_BUILTINS = {
    "integer", "nonPositiveInteger", "negativeInteger", "long", "int", "short", "byte",
    "nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte", "positiveInteger",
}
_NAME_BUILTINS = {"ID", "IDREF", "NCName", "Name", "ENTITY", "NMTOKEN", "language"}


def _bounds(facets: dict) -> tuple:
    lo = facets.get("minInclusive")
    if "minExclusive" in facets:
        lo = facets["minExclusive"] + 1
    hi = facets.get("maxInclusive")
    if "maxExclusive" in facets:
        hi = facets["maxExclusive"] - 1
    return (int(lo) if lo is not None else None), (int(hi) if hi is not None else None)


def _lengths(facets: dict) -> tuple:
    if "length" in facets:
        return facets["length"], facets["length"]
    return facets.get("minLength", 0), facets.get("maxLength")


class InstanceGenerator:
    """
    Draws valid instances of the element declarations of one schema set.

    :ivar schema: the :class:`~evsev2g.exi.xsd.SchemaSet`.
    :ivar profile: the :class:`Profile` in force.
    """

    def __init__(self, schema: SchemaSet, chooser, profile: Profile = TYPICAL) -> None:
        """
        :param schema: the schema model (``codec.grammars.schema``).
        :param chooser: a :class:`RandomChooser` or :class:`HypothesisChooser`.
        :param profile: the :class:`Profile`.
        """
        self.schema = schema
        self.c = chooser
        self.profile = profile
        self._producible: dict = {}
        self._weight = 0
        self._empties = False
        self.coverage = Coverage()

    # -- entry points ------------------------------------------------------------

    def element(self, decl: ElementDecl, profile: Profile | None = None):
        """
        One instance of ``decl``.

        :param decl: a producible element declaration (see :meth:`producible`).
        :param profile: a profile for this instance only.
        :returns: a :class:`Message` for a complex type, else a Python value.
        """
        if profile is not None:
            self.profile = profile
        self._weight = 0
        self._empties = self.c.chance(0.1)
        return self._element(decl, 0)

    def fragment_root(self, decls: list[ElementDecl], profile: Profile | None = None) -> Message:
        """
        One instance of a fragment root: an element qname with all its
        declarations (one is picked); simple-typed roots become a
        :class:`Message` holding the value.

        :param decls: the declarations of one qname.
        :returns: the root :class:`Message`.
        """
        decls = [d for d in decls if self.producible(d)]
        decl = decls[self.c.integer(0, len(decls) - 1)]
        value = self.element(decl, profile)
        if isinstance(value, Message):
            return value
        return Message(decl.name, ns=decl.ns, value=value)

    def producible(self, decl: ElementDecl) -> bool:
        """Whether a finite valid instance of ``decl`` exists without wildcard content."""
        return not decl.abstract and self._type_ok(decl.type)

    # -- producibility (least fixpoint over the types) --------------------------------

    def _type_ok(self, t) -> bool:
        if not isinstance(t, ComplexType):
            return True
        key = id(t)
        if key not in self._producible:
            self._producible[key] = False          # a cycle counts as unproducible until shown otherwise
            ok = t.content != "element" or self._particle_ok(t.particle)
            self._producible[key] = ok
        return self._producible[key]

    def _particle_ok(self, p: Particle) -> bool:
        return p.min == 0 or self._term_ok(p.term)

    def _term_ok(self, term) -> bool:
        if isinstance(term, Wildcard):
            return False
        if isinstance(term, ElementDecl):
            return any(self.producible(m) for m in self._members(term))
        if term.kind == "choice":
            return any(self._particle_ok(p) for p in term.particles)
        return all(self._particle_ok(p) for p in term.particles)

    def _members(self, decl: ElementDecl) -> list:
        return [decl] + list(self.schema.substitutes.get(decl.qname, []))

    # -- structure --------------------------------------------------------------------

    @property
    def _lean(self) -> bool:
        return self._weight > self.profile.budget

    def _count(self, lo: int, hi: int | None, depth: int) -> int:
        prof = self.profile
        cap = prof.repeat_cap if hi is None else min(hi, prof.repeat_cap)
        if cap <= lo or self._lean or depth > prof.depth:
            return lo
        if lo == 0 and not self.c.chance(prof.optional):
            return 0
        base = max(lo, 1)
        if self.c.chance(prof.repeat_max):
            return cap if hi is not None else self.c.integer(base, max(base, min(cap, prof.unbounded)))
        return self.c.integer(base, min(cap, base + 2))

    def _particle(self, p: Particle, out: list, depth: int) -> None:
        if not self._term_ok(p.term):
            return                                  # only reached when p.min == 0
        count = self._count(p.min, p.max, depth)
        if count == p.max and count > 1:
            self.coverage.hit(("max", id(p)))
        for _ in range(count):
            self._term(p.term, out, depth)

    def _term(self, term, out: list, depth: int) -> None:
        if isinstance(term, ElementDecl):
            members = [m for m in self._members(term) if self.producible(m)]
            decl = members[self.c.integer(0, len(members) - 1)]
            self.coverage.hit(("member", term.qname, decl.qname))
            out.append((decl.name, self._element(decl, depth + 1)))
        elif isinstance(term, ModelGroup):
            if term.kind == "choice":
                branches = [p for p in term.particles if self._particle_ok(p)]
                branch = branches[self.c.integer(0, len(branches) - 1)]
                self.coverage.hit(("branch", id(branch)))
                self._particle(branch, out, depth)
            else:                                   # sequence (xs:all is not used by V2G)
                for p in term.particles:
                    self._particle(p, out, depth)

    def _element(self, decl: ElementDecl, depth: int):
        self._weight += 1
        t = decl.type
        if not isinstance(t, ComplexType):
            return self.value(t)
        attrs = {}
        for au in t.attributes:
            if au.required or (not self._lean and self.c.chance(self.profile.optional)):
                attrs[au.name] = self.value(au.type)
        value, children = None, []
        if t.content == "simple":
            value = self.value(t.simple_type)
        elif t.content == "element":
            self._particle(t.particle, children, depth)
        if t.mixed:
            children = self._with_text(children)
        return Message(decl.name, children, ns=decl.ns, attrs=attrs, value=value)

    def _with_text(self, children: list) -> list:
        out = []
        for i in range(len(children) + 1):
            if self.c.chance(0.3):
                text = self._string(0, 8, "string")
                out.append(("#text", text if text.strip() else text + "x"))
            if i < len(children):
                out.append(children[i])
        return out

    # -- values -------------------------------------------------------------------------

    def value(self, st: SimpleType):
        """
        A valid Python value of a simple type.

        :raises NotImplementedError: for built-ins V2G does not use (decimal,
            float, date/time, lists, unions).
        """
        b = st.builtin
        if st.enumeration is not None:
            lexical = st.enumeration[self.c.integer(0, len(st.enumeration) - 1)]
            self.coverage.hit(("enum", id(st), lexical))
            return int(lexical) if b in _INTEGER_BUILTINS else lexical
        if st.variety != "atomic":
            raise NotImplementedError(f"{st.variety} types")
        if b in _INTEGER_BUILTINS:
            return self._integer(*_bounds(st.facets))
        if b == "boolean":
            return self.c.chance(0.5)
        if b in ("hexBinary", "base64Binary"):
            lo, hi = _lengths(st.facets)
            n = self._length(lo, hi, self.profile.binary_max)
            self._weight += n // 16
            return bytes(self.c.integer(0, 255) for _ in range(n))
        if b in ("string", "normalizedString", "token", "anyURI") or b in _NAME_BUILTINS:
            lo, hi = _lengths(st.facets)
            return self._string(lo, hi, b)
        raise NotImplementedError(f"values of xs:{b}")

    def _integer(self, lo, hi) -> int:
        lo_eff = lo if lo is not None else -UNBOUNDED_INT
        hi_eff = hi if hi is not None else UNBOUNDED_INT
        if self.c.chance(self.profile.extreme):
            edges = {lo_eff, hi_eff, lo_eff + 1, hi_eff - 1}
            for m in _EDGE_MAGNITUDES:
                edges.update((m, -m, -m - 1))
            edges = sorted(e for e in edges if lo_eff <= e <= hi_eff)
            return edges[self.c.integer(0, len(edges) - 1)]
        if hi_eff - lo_eff <= 4096:
            return self.c.integer(lo_eff, hi_eff)
        # a random bit length, so that one- to many-byte values all occur
        bits = self.c.integer(0, max(hi_eff.bit_length(), (-lo_eff).bit_length()))
        value = self.c.integer(0, (1 << bits) - 1)
        if lo_eff < 0 and self.c.chance(0.5):
            value = -value - 1
        return min(max(value, lo_eff), hi_eff)

    def _length(self, lo: int, hi: int | None, default_max: int) -> int:
        top = hi if hi is not None else max(lo, default_max)
        if lo == 0 and top > 0 and not (self._empties and self.c.chance(0.3)):
            lo = 1          # empty values only in some instances: EXIficient codes them differently
        if self.c.chance(self.profile.extreme):
            return (lo, top)[self.c.integer(0, 1)]
        return self.c.integer(lo, min(top, lo + 16))

    def _string(self, lo: int, hi: int | None, builtin: str) -> str:
        n = self._length(lo, hi, self.profile.text_max)
        self._weight += n // 8
        if builtin in _NAME_BUILTINS:
            if n == 0:
                return ""
            return _NAME_START[self.c.integer(0, len(_NAME_START) - 1)] + "".join(
                _NAME_MORE[self.c.integer(0, len(_NAME_MORE) - 1)] for _ in range(n - 1))
        if builtin == "anyURI":
            return "".join(_URI[self.c.integer(0, len(_URI) - 1)] for _ in range(n))
        pools = [_ASCII, _PUNCT, _WIDE, _ASTRAL]
        if builtin == "string":
            pools.append(_SPACE)
        chars = []
        for _ in range(n):
            pool = pools[0] if self.c.chance(0.6) else pools[self.c.integer(0, len(pools) - 1)]
            chars.append(pool[self.c.integer(0, len(pool) - 1)])
        text = "".join(chars)
        if builtin != "string":                     # token-like types: no edge or double spaces
            text = "".join(ch if ch != " " else "_" for ch in text)
        return text


class Coverage:
    """
    Which schema constructs the generated instances used: enumeration
    values, substitution-group members, choice branches, bounded particles
    at their maximum.

    :ivar seen: the construct keys hit so far.
    """

    def __init__(self) -> None:
        self.seen: set = set()

    def hit(self, key: tuple) -> None:
        """Record one construct key."""
        self.seen.add(key)

    @staticmethod
    def universe(gen: "InstanceGenerator", repeat_cap: int = 1024) -> dict:
        """
        Every construct key the generator can hit for its schema, with a
        readable label.

        :param gen: the generator (its schema and producibility).
        :param repeat_cap: bounded particles above this maximum are left out.
        :returns: ``{key: label}``.
        """
        keys: dict = {}
        done: set = set()

        def simple(st, where):
            if st is not None and st.enumeration is not None:
                for lexical in st.enumeration:
                    keys[("enum", id(st), lexical)] = f"enumeration {st.label}={lexical} ({where})"

        def particle(p, where):
            if p.max is not None and 1 < p.max <= repeat_cap and gen._term_ok(p.term):
                keys[("max", id(p))] = f"{p.max} occurrences in {where}"
            term = p.term
            if isinstance(term, ElementDecl):
                members = [m for m in gen._members(term) if gen.producible(m)]
                if len(members) > 1:
                    for m in members:
                        keys[("member", term.qname, m.qname)] = f"{m.name} for {term.name} in {where}"
            elif isinstance(term, ModelGroup):
                branches = [b for b in term.particles if gen._particle_ok(b)]
                for b in branches:
                    if term.kind == "choice" and len(branches) > 1:
                        keys[("branch", id(b))] = f"choice branch {_describe(b)} in {where}"
                    particle(b, where)

        for decl in gen.schema.all_elements:
            t = decl.type
            if not gen.producible(decl) or id(t) in done:
                continue
            done.add(id(t))
            if not isinstance(t, ComplexType):
                simple(t, decl.name)
                continue
            for au in t.attributes:
                simple(au.type, f"{decl.name}@{au.name}")
            simple(t.simple_type, decl.name)
            if t.content == "element":
                particle(t.particle, t.label if t.name else decl.name)
        return keys


def _describe(p: Particle) -> str:
    term = p.term
    if isinstance(term, ElementDecl):
        return term.name
    if isinstance(term, ModelGroup):
        return f"{term.kind}({', '.join(_describe(q) for q in term.particles)})"
    return "any"
