"""
EXI datatype representations (EXI 1.0 §7) for the simple types of a schema.

:func:`representation` picks the representation from a simple type's
closest built-in ancestor and facets (§7, Table 7-1), and returns a
:class:`Representation` that knows how to

* read and write the value on the bit stream (the generic path; the code
  generator inlines its own reads and writes of the common kinds),
* check a Python value against the type (Python type, ranges, lengths,
  enumeration, digits) before encoding,
* convert between the value and its XML lexical form.

Python values: ``int`` for the integer family, ``bool``, ``bytes`` for
hexBinary/base64Binary, ``str`` for strings and enumerations,
``decimal.Decimal``, ``float``, ``str`` in canonical lexical form for the
date/time family, ``list`` for list types.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import TYPE_CHECKING

from evsev2g.exi.bits import read_bits, read_uint, write_uint
from evsev2g.exi.errors import ExiError, LimitExceeded
from evsev2g.exi.grammar import code_width
from evsev2g.exi.xsd import SimpleType

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = ["Representation", "representation", "DATETIME_KINDS", "ValueTables"]

#: Integer ranges up to this many values use the n-bit form (§7.1.5).
NBIT_RANGE_LIMIT = 4096

DATETIME_KINDS = ("dateTime", "date", "time", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth")

_INTEGER_BUILTINS = {
    "integer", "nonPositiveInteger", "negativeInteger", "long", "int", "short", "byte",
    "nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte",
    "positiveInteger",
}


class ValueTables:
    """
    The value partitions of the string table (§7.3.3) as a decoder sees
    them.  Our encoder never adds to them (valuePartitionCapacity = 0), but
    the decoder records every literal so that a peer using hits is still
    understood.

    :ivar glob: global value partition.
    :ivar local: ``{qname: [values]}`` local partitions.
    """

    __slots__ = ("glob", "local")

    def __init__(self) -> None:
        self.glob: list[str] = []
        self.local: dict = {}

    def read(self, v: int, n: int, p: int, qname, max_len: int) -> tuple[str, int]:
        """
        Read a string value (§7.3.3): a local hit (0), a global hit (1) or a
        literal of ``length + 2`` characters, which is then recorded.

        :returns: ``(value, new offset)``.
        """
        length, p = read_uint(v, n, p)
        if length == 0:
            table = self.local.get(qname, [])
            idx, p = read_bits(v, n, p, code_width(len(table)))
            if idx >= len(table):
                raise ExiError("string table hit (local) for a value never seen", bit=p)
            return table[idx], p
        if length == 1:
            idx, p = read_bits(v, n, p, code_width(len(self.glob)))
            if idx >= len(self.glob):
                raise ExiError("string table hit (global) for a value never seen", bit=p)
            return self.glob[idx], p
        value, p = read_chars(v, n, p, length - 2, max_len)
        if value:
            self.glob.append(value)
            self.local.setdefault(qname, []).append(value)
        return value, p


def _decimal_type() -> type:
    """``decimal.Decimal``, imported on first use: V2G's schemas have no decimal or float values."""
    from decimal import Decimal

    return Decimal


def _decimal(value):
    """``decimal.Decimal(value)`` (see :func:`_decimal_type`)."""
    return _decimal_type()(value)


def read_chars(v: int, n: int, p: int, count: int, max_len: int) -> tuple[str, int]:
    """
    ``count`` characters, one Unsigned Integer code point each (§7.1.10).

    :raises LimitExceeded: when ``count`` exceeds ``max_len``.
    """
    if count > max_len:
        raise LimitExceeded(f"string of {count} characters exceeds the limit of {max_len}", bit=p)
    if p + 8 * count > n:
        raise ExiError("truncated: stream ends inside a string", bit=p)
    if count == 0:
        return "", p
    raw = ((v >> (n - p - 8 * count)) & ((1 << (8 * count)) - 1)).to_bytes(count, "big")
    if raw.isascii():
        return raw.decode("ascii"), p + 8 * count
    # Unsigned Integers are whole octets: parse the octets after p (a code point
    # up to 0x10FFFF takes at most 3), instead of shifting the stream per character
    k = min((n - p) // 8, 3 * count)
    raw = ((v >> (n - p - 8 * k)) & ((1 << (8 * k)) - 1)).to_bytes(k, "big")
    chars = []
    i = 0
    for _ in range(count):
        cp = shift = 0
        while True:
            if i >= k:
                raise ExiError("truncated: stream ends inside a string", bit=p + 8 * i)
            octet = raw[i]
            i += 1
            cp |= (octet & 0x7F) << shift
            if octet < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ExiError("character code point out of range", bit=p + 8 * i)
        if cp > 0x10FFFF:
            raise ExiError(f"character code point {cp:#x} out of range", bit=p + 8 * i)
        chars.append(chr(cp))
    return "".join(chars), p + 8 * i


def write_chars(acc: int, nb: int, text: str) -> tuple[int, int]:
    """Append the code points of ``text`` as Unsigned Integers."""
    if text.isascii():
        k = len(text)
        return (acc << (8 * k)) | int.from_bytes(text.encode("ascii"), "big"), nb + 8 * k
    out = bytearray()
    for ch in text:
        cp = ord(ch)
        while cp >= 0x80:
            out.append(0x80 | (cp & 0x7F))
            cp >>= 7
        out.append(cp)
    return (acc << (8 * len(out))) | int.from_bytes(out, "big"), nb + 8 * len(out)


def _write_int(acc: int, nb: int, value: int) -> tuple[int, int]:
    """An Integer (§7.1.5): a sign bit, then the magnitude (minus one when negative)."""
    if value < 0:
        return write_uint((acc << 1) | 1, nb + 1, -value - 1)
    return write_uint(acc << 1, nb + 1, value)


def _read_int(v: int, n: int, p: int) -> tuple[int, int]:
    sign, p = read_bits(v, n, p, 1)
    mag, p = read_uint(v, n, p)
    return (-mag - 1 if sign else mag), p


def _bounds(facets: dict) -> tuple:
    lo = facets.get("minInclusive")
    if "minExclusive" in facets:
        lo = facets["minExclusive"] + 1 if isinstance(facets["minExclusive"], int) else facets["minExclusive"]
    hi = facets.get("maxInclusive")
    if "maxExclusive" in facets:
        hi = facets["maxExclusive"] - 1 if isinstance(facets["maxExclusive"], int) else facets["maxExclusive"]
    return lo, hi


class Representation:
    """
    How one simple type's values are written (§7).

    :ivar kind: ``"nbit"``, ``"uint"``, ``"int"``, ``"bool"``, ``"binary"``,
        ``"string"``, ``"enum"``, ``"decimal"``, ``"float"``, ``"datetime"``
        or ``"list"``.
    :ivar type: the :class:`SimpleType`.
    :ivar label: a readable type name for messages.
    """

    def __init__(self, kind: str, st: SimpleType, **params) -> None:
        self.kind = kind
        self.type = st
        self.label = st.label
        self.facets = st.facets
        self.lo = params.get("lo")
        self.hi = params.get("hi")
        self.width = params.get("width", 0)
        self.values = params.get("values")          # enumeration Python values
        self.index = params.get("index")            # enumeration value -> index
        self.item = params.get("item")              # list item Representation
        self.hex = params.get("hex", False)          # hexBinary (else base64)
        self.dt_kind = params.get("dt_kind")
        self.min_len, self.max_len = self._length_bounds()
        self.unchecked = self._unchecked()

    def _length_bounds(self) -> tuple:
        f = self.facets
        if "length" in f:
            return f["length"], f["length"]
        return f.get("minLength", 0), f.get("maxLength")

    def _unchecked(self) -> bool:
        """
        Whether a value read from a stream may still fail :meth:`check`: the
        stream rules out wrong Python types, enumeration indexes and (as the
        readers test them) integer ranges, but not lengths, digits, decimal
        ranges, or float and date-time values the encoder cannot write.
        """
        kind = self.kind
        if kind in ("bool", "enum"):
            return False
        if kind in ("nbit", "uint", "int"):
            return "totalDigits" in self.facets
        if kind in ("binary", "string"):
            return self.min_len > 0 or self.max_len is not None
        if kind == "list":
            return self.min_len > 0 or self.max_len is not None or self.item.unchecked
        return True

    def fits(self, value) -> bool:
        """:returns: whether ``value`` passes :meth:`check` (for decoded values)."""
        try:
            self.check(value)
        except ExiError:
            return False
        return True

    # -- checking ---------------------------------------------------------

    def check(self, value) -> None:
        """
        Check a Python value before encoding.

        :raises ExiError: naming what is wrong (the caller adds the path).
        """
        kind = self.kind
        if kind in ("nbit", "uint", "int"):
            if type(value) is not int:
                raise ExiError(f"expected int for {self.label}, got {type(value).__name__} {value!r}")
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                raise ExiError(f"value {value} out of range [{self.lo}, {self.hi}] of {self.label}")
            if "totalDigits" in self.facets:    # an int has no fraction digits to check
                self._check_digits(_decimal(value))
        elif kind == "bool":
            if type(value) is not bool:
                raise ExiError(f"expected bool for {self.label}, got {type(value).__name__} {value!r}")
        elif kind == "binary":
            if not isinstance(value, (bytes, bytearray)):
                raise ExiError(f"expected bytes for {self.label}, got {type(value).__name__}")
            self._check_length(len(value), "bytes")
        elif kind == "string":
            if type(value) is not str:
                raise ExiError(f"expected str for {self.label}, got {type(value).__name__} {value!r}")
            self._check_length(len(value), "characters")
        elif kind == "enum":
            if value not in self.index or type(value) is not type(self.values[0]):
                raise ExiError(f"{value!r} is not one of the values of {self.label}")
        elif kind == "decimal":
            if type(value) is not _decimal_type() or not value.is_finite():
                raise ExiError(f"expected a finite Decimal for {self.label}, got {value!r}")
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                raise ExiError(f"value {value} out of range [{self.lo}, {self.hi}] of {self.label}")
            self._check_digits(value)
        elif kind == "float":
            if type(value) is not float:
                raise ExiError(f"expected float for {self.label}, got {type(value).__name__} {value!r}")
            _float_parts(value)
        elif kind == "datetime":
            if type(value) is not str:
                raise ExiError(f"expected a {self.dt_kind} string for {self.label}, got {value!r}")
            _parse_datetime(self.dt_kind, value)
        elif kind == "list":
            if not isinstance(value, (list, tuple)):
                raise ExiError(f"expected a list for {self.label}, got {type(value).__name__}")
            self._check_length(len(value), "items")
            for item in value:
                self.item.check(item)

    def _check_length(self, length: int, unit: str) -> None:
        if length < self.min_len or (self.max_len is not None and length > self.max_len):
            bound = f"{self.min_len}..{self.max_len}" if self.max_len is not None else f">= {self.min_len}"
            raise ExiError(f"length {length} {unit} outside {bound} of {self.label}")

    def _check_digits(self, value: Decimal) -> None:
        f = self.facets
        if "totalDigits" not in f and "fractionDigits" not in f:
            return
        sign, digits, exp = value.normalize().as_tuple() if value else (0, (0,), 0)
        frac = max(0, -exp)
        total = max(len(digits), frac)
        if "fractionDigits" in f and frac > f["fractionDigits"]:
            raise ExiError(f"{value} has more than {f['fractionDigits']} fraction digits ({self.label})")
        if "totalDigits" in f and total > f["totalDigits"]:
            raise ExiError(f"{value} has more than {f['totalDigits']} digits ({self.label})")

    # -- stream ------------------------------------------------------------

    def read(self, v: int, n: int, p: int, limits) -> tuple[object, int]:
        """
        Read one value (generic path).

        :param limits: a :class:`~evsev2g.exi.runtime.Limits`.
        :returns: ``(value, new offset)``.
        :raises ExiError: on truncation, out-of-range values or limits.
        """
        kind = self.kind
        if kind == "nbit":
            raw, p = read_bits(v, n, p, self.width)
            value = raw + self.lo
            if value > self.hi:
                raise ExiError(f"value {value} out of range of {self.label}", bit=p)
            return value, p
        if kind == "uint":
            value, p = read_uint(v, n, p)
            if self.hi is not None and value > self.hi or self.lo is not None and value < self.lo:
                raise ExiError(f"value {value} out of range of {self.label}", bit=p)
            return value, p
        if kind == "int":
            value, p = _read_int(v, n, p)
            if self.hi is not None and value > self.hi or self.lo is not None and value < self.lo:
                raise ExiError(f"value {value} out of range of {self.label}", bit=p)
            return value, p
        if kind == "bool":
            bit, p = read_bits(v, n, p, 1)
            return bool(bit), p
        if kind == "binary":
            length, p = read_uint(v, n, p)
            if length > limits.max_binary:
                raise LimitExceeded(f"binary of {length} bytes exceeds the limit of {limits.max_binary}",
                                    bit=p)
            if p + 8 * length > n:
                raise ExiError("truncated: stream ends inside a binary value", bit=p)
            raw = (v >> (n - p - 8 * length)) & ((1 << (8 * length)) - 1)
            return raw.to_bytes(length, "big"), p + 8 * length
        if kind == "string":
            length, p = read_uint(v, n, p)
            if length < 2:
                raise ExiError("string table hit where no table is kept", bit=p)
            return read_chars(v, n, p, length - 2, limits.max_string)
        if kind == "enum":
            idx, p = read_bits(v, n, p, self.width)
            if idx >= len(self.values):
                raise ExiError(f"enumeration index {idx} out of range of {self.label}", bit=p)
            return self.values[idx], p
        if kind == "decimal":
            sign, p = read_bits(v, n, p, 1)
            integral, p = read_uint(v, n, p)
            frac, p = read_uint(v, n, p)
            text = f"{'-' if sign else ''}{integral}.{str(frac)[::-1]}"
            return _decimal(text), p
        if kind == "float":
            return _read_float(v, n, p)
        if kind == "datetime":
            return _read_datetime(self.dt_kind, v, n, p)
        if kind == "list":
            count, p = read_uint(v, n, p)
            if count > limits.max_list:
                raise LimitExceeded(f"list of {count} items exceeds the limit of {limits.max_list}", bit=p)
            out = []
            for _ in range(count):
                item, p = self.item.read(v, n, p, limits)
                out.append(item)
            return out, p
        raise ExiError(f"no reader for {kind}")  # pragma: no cover - kinds are closed

    def write(self, acc: int, nb: int, value) -> tuple[int, int]:
        """
        Append one (already checked) value.

        :returns: ``(acc, nb)``.
        """
        kind = self.kind
        if kind == "nbit":
            return (acc << self.width) | (value - self.lo), nb + self.width
        if kind == "uint":
            return write_uint(acc, nb, value)
        if kind == "int":
            return _write_int(acc, nb, value)
        if kind == "bool":
            return (acc << 1) | int(value), nb + 1
        if kind == "binary":
            acc, nb = write_uint(acc, nb, len(value))
            return (acc << (8 * len(value))) | int.from_bytes(value, "big"), nb + 8 * len(value)
        if kind == "string":
            acc, nb = write_uint(acc, nb, len(value) + 2)
            return write_chars(acc, nb, value)
        if kind == "enum":
            return (acc << self.width) | self.index[value], nb + self.width
        if kind == "decimal":
            sign, digits, exp = value.as_tuple()
            text = "".join(map(str, digits))
            if exp >= 0:
                integral, frac = text + "0" * exp, ""
            else:
                integral, frac = text[:exp] or "0", text[exp:].rjust(-exp, "0")
            frac = frac.rstrip("0")
            acc, nb = (acc << 1) | int(bool(sign) and value != 0), nb + 1
            acc, nb = write_uint(acc, nb, int(integral))
            return write_uint(acc, nb, int(frac[::-1]) if frac else 0)
        if kind == "float":
            return _write_float(acc, nb, value)
        if kind == "datetime":
            return _write_datetime(self.dt_kind, acc, nb, value)
        if kind == "list":
            acc, nb = write_uint(acc, nb, len(value))
            for item in value:
                acc, nb = self.item.write(acc, nb, item)
            return acc, nb
        raise ExiError(f"no writer for {kind}")  # pragma: no cover

    # -- XML lexical forms ---------------------------------------------------

    def from_text(self, text: str):
        """
        :param text: the XML lexical form.
        :returns: the Python value.
        :raises ExiError: when the text is not a value of the type.
        """
        kind = self.kind
        try:
            if kind in ("nbit", "uint", "int"):
                return int(text.strip())
            if kind == "bool":
                word = text.strip()
                if word in ("true", "1"):
                    return True
                if word in ("false", "0"):
                    return False
                raise ValueError(word)
            if kind == "binary":
                if self.hex:
                    return bytes.fromhex(text.strip())
                return base64.b64decode("".join(text.split()), validate=True)
            if kind == "string":
                return text
            if kind == "enum":
                # exact first; else whitespace-collapsed, as EXIficient accepts " OK " for "OK"
                # (harmless: no enumeration value has edge or double spaces)
                return self.values[self.lexical.index(text if text in self.lexical else _collapse(text))]
            if kind == "decimal":
                return _decimal(text.strip())
            if kind == "float":
                word = text.strip()
                return {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}.get(word) or float(word)
            if kind == "datetime":
                word = text.strip()
                _parse_datetime(self.dt_kind, word)
                return word
            if kind == "list":
                return [self.item.from_text(tok) for tok in text.split()]
        except (ValueError, ArithmeticError, binascii.Error) as exc:  # decimal's InvalidOperation is an ArithmeticError
            raise ExiError(f"{text!r} is not a valid {self.label}: {exc}") from None
        raise ExiError(f"no lexical form for {kind}")  # pragma: no cover

    def to_text(self, value) -> str:
        """:returns: the canonical XML lexical form of a Python value."""
        kind = self.kind
        if kind == "bool":
            return "true" if value else "false"
        if kind == "binary":
            return value.hex().upper() if self.hex else base64.b64encode(value).decode("ascii")
        if kind == "enum":
            return self.lexical[self.index[value]]
        if kind == "float":
            if math.isinf(value):
                return "INF" if value > 0 else "-INF"
            if math.isnan(value):
                return "NaN"
            return repr(value).upper() if "e" in repr(value) else repr(value)
        if kind == "list":
            return " ".join(self.item.to_text(x) for x in value)
        return str(value)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def representation(st: SimpleType) -> Representation:
    """
    :param st: a simple type.
    :returns: its :class:`Representation` (cached on the type).
    """
    cached = getattr(st, "_exi_rep", None)
    if cached is not None:
        return cached
    rep = _make(st)
    st._exi_rep = rep
    return rep


def _make(st: SimpleType) -> Representation:
    builtin = st.builtin
    if st.variety == "list":
        return Representation("list", st, item=representation(st.item))
    if st.variety == "union":
        return Representation("string", st)
    if st.enumeration is not None and builtin not in ("QName", "NOTATION"):
        base_rep = _make_atomic(st, builtin)
        lexical = list(st.enumeration)
        values = [base_rep.from_text(x) for x in lexical]
        rep = Representation("enum", st, values=values, index={val: i for i, val in enumerate(values)},
                             width=code_width(len(values)))
        rep.lexical = lexical
        return rep
    return _make_atomic(st, builtin)


def _make_atomic(st: SimpleType, builtin: str) -> Representation:
    if builtin in ("hexBinary", "base64Binary"):
        return Representation("binary", st, hex=builtin == "hexBinary")
    if builtin == "boolean":
        return Representation("bool", st, width=1)
    if builtin in _INTEGER_BUILTINS:
        lo, hi = _bounds(st.facets)
        lo = int(lo) if lo is not None else None
        hi = int(hi) if hi is not None else None
        if lo is not None and hi is not None and hi - lo + 1 <= NBIT_RANGE_LIMIT:
            return Representation("nbit", st, lo=lo, hi=hi, width=code_width(hi - lo + 1))
        if lo is not None and lo >= 0:
            return Representation("uint", st, lo=lo, hi=hi)
        return Representation("int", st, lo=lo, hi=hi)
    if builtin == "decimal":
        lo, hi = _bounds(st.facets)
        return Representation("decimal", st, lo=_decimal(lo) if lo is not None else None,
                              hi=_decimal(hi) if hi is not None else None)
    if builtin in ("float", "double"):
        return Representation("float", st)
    if builtin in DATETIME_KINDS:
        return Representation("datetime", st, dt_kind=builtin)
    return Representation("string", st)


# -- float (§7.1.4) -----------------------------------------------------------

_FLOAT_SPECIAL = -(1 << 14)


def _float_parts(value: float) -> tuple[int, int]:
    if math.isnan(value):
        return 0, _FLOAT_SPECIAL
    if math.isinf(value):
        return (1 if value > 0 else -1), _FLOAT_SPECIAL
    sign, digits, exp = _decimal(repr(value)).as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    while mantissa and mantissa % 10 == 0:
        mantissa //= 10
        exp += 1
    if mantissa == 0:
        exp = 0
    if mantissa >= 1 << 63 or abs(exp) >= 1 << 14:
        raise ExiError(f"float {value!r} does not fit the EXI float representation")
    return (-mantissa if sign else mantissa), exp


def _write_float(acc: int, nb: int, value: float) -> tuple[int, int]:
    mantissa, exp = _float_parts(value)
    acc, nb = _write_int(acc, nb, mantissa)
    return _write_int(acc, nb, exp)


def _read_float(v: int, n: int, p: int) -> tuple[float, int]:
    mantissa, p = _read_int(v, n, p)
    exp, p = _read_int(v, n, p)
    if exp == _FLOAT_SPECIAL:
        return (math.inf if mantissa == 1 else -math.inf if mantissa == -1 else math.nan), p
    if abs(exp) >= 1 << 14 or abs(mantissa) >= 1 << 64:
        raise ExiError("float out of range", bit=p)
    return float(_decimal(mantissa).scaleb(exp)), p


# -- date and time (§7.1.8) ------------------------------------------------------

_DT_RE = {
    "dateTime": r"(?P<y>-?\d{4,})-(?P<mo>\d\d)-(?P<d>\d\d)T(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d+))?",
    "date": r"(?P<y>-?\d{4,})-(?P<mo>\d\d)-(?P<d>\d\d)",
    "time": r"(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d+))?",
    "gYearMonth": r"(?P<y>-?\d{4,})-(?P<mo>\d\d)",
    "gYear": r"(?P<y>-?\d{4,})",
    "gMonthDay": r"--(?P<mo>\d\d)-(?P<d>\d\d)",
    "gDay": r"---(?P<d>\d\d)",
    "gMonth": r"--(?P<mo>\d\d)",
}
_TZ = r"(?P<tz>Z|[+-]\d\d:\d\d)?"
_DT_COMPILED = {k: re.compile(f"^{v}{_TZ}$") for k, v in _DT_RE.items()}


def _parse_datetime(kind: str, text: str) -> dict:
    m = _DT_COMPILED[kind].match(text)
    if not m:
        raise ExiError(f"{text!r} is not a valid {kind}")
    return {k: v for k, v in m.groupdict().items() if v is not None}


def _write_datetime(kind: str, acc: int, nb: int, text: str) -> tuple[int, int]:
    parts = _parse_datetime(kind, text)
    if "y" in parts:
        acc, nb = _write_int(acc, nb, int(parts["y"]) - 2000)
    if kind in ("dateTime", "date", "gYearMonth", "gMonthDay", "gDay", "gMonth"):
        month_day = int(parts.get("mo", 0)) * 32 + int(parts.get("d", 0))
        acc, nb = (acc << 9) | month_day, nb + 9
    if kind in ("dateTime", "time"):
        t = (int(parts["h"]) * 64 + int(parts["mi"])) * 64 + int(parts["s"])
        acc, nb = (acc << 17) | t, nb + 17
        frac = parts.get("f")
        if frac and frac.rstrip("0"):
            acc, nb = (acc << 1) | 1, nb + 1
            acc, nb = write_uint(acc, nb, int(frac.rstrip("0")[::-1]))
        else:
            acc, nb = acc << 1, nb + 1
    tz = parts.get("tz")
    if tz:
        if tz == "Z":
            minutes = 0
        else:
            sign = -1 if tz[0] == "-" else 1
            minutes = sign * (int(tz[1:3]) * 60 + int(tz[4:6]))
        hours, mins = divmod(abs(minutes), 60)
        hours = hours if minutes >= 0 else -hours
        mins = mins if minutes >= 0 else -mins
        acc, nb = (acc << 1) | 1, nb + 1
        acc, nb = (acc << 11) | (hours * 64 + mins + 896), nb + 11
    else:
        acc, nb = acc << 1, nb + 1
    return acc, nb


def _read_datetime(kind: str, v: int, n: int, p: int) -> tuple[str, int]:
    out = ""
    if kind in ("dateTime", "date", "gYearMonth", "gYear"):
        year, p = _read_int(v, n, p)
        year += 2000
        out = f"-{abs(year):04d}" if year < 0 else f"{year:04d}"
    if kind in ("dateTime", "date", "gYearMonth", "gMonthDay", "gDay", "gMonth"):
        md, p = read_bits(v, n, p, 9)
        month, day = divmod(md, 32)
        if kind in ("dateTime", "date"):
            out += f"-{month:02d}-{day:02d}"
        elif kind == "gYearMonth":
            out += f"-{month:02d}"
        elif kind == "gMonthDay":
            out = f"--{month:02d}-{day:02d}"
        elif kind == "gDay":
            out = f"---{day:02d}"
        else:
            out = f"--{month:02d}"
    if kind in ("dateTime", "time"):
        t, p = read_bits(v, n, p, 17)
        hm, sec = divmod(t, 64)
        hour, minute = divmod(hm, 64)
        out += ("T" if kind == "dateTime" else "") + f"{hour:02d}:{minute:02d}:{sec:02d}"
        has_frac, p = read_bits(v, n, p, 1)
        if has_frac:
            frac, p = read_uint(v, n, p)
            out += "." + str(frac)[::-1]
    has_tz, p = read_bits(v, n, p, 1)
    if has_tz:
        tz, p = read_bits(v, n, p, 11)
        tz -= 896
        hours, mins = divmod(abs(tz), 64)
        if tz == 0:
            out += "Z"
        else:
            out += f"{'-' if tz < 0 else '+'}{hours:02d}:{mins:02d}"
    return out, p


