"""
The EXI datatype representations the V2G schemas do not use (decimal, float,
the date-time family, lists), checked bit for bit against layouts worked out
by hand from EXI 1.0 §7.1.3, §7.1.4, §7.1.8 and §7.1.11, so that schemas
which do use them (other V2G versions, vendor extensions) encode right.
"""

import math
from decimal import Decimal

import pytest

from evsev2g.exi.bits import BitWriter
from evsev2g.exi.codec import Limits
from evsev2g.exi.errors import ExiError
from evsev2g.exi.values import representation
from evsev2g.exi.xsd import SimpleType


def rep_of(builtin, **kwargs):
    """The representation of an anonymous simple type derived from ``builtin``."""
    return representation(SimpleType(name=None, builtin=builtin, **kwargs))


def bits(*fields):
    """Expected stream: ``(value, width)`` fixed fields and ``("u", value)`` Unsigned Integers."""
    writer = BitWriter()
    for field in fields:
        if field[0] == "u":
            writer.uint(field[1])
        else:
            writer.bits(*field)
    return writer.acc, writer.nb


def encode(rep, value):
    """``(acc, nb)`` of ``value`` written alone."""
    rep.check(value)
    return rep.write(0, 0, value)


def decode(rep, acc, nb):
    """Read one value back from a stream of exactly ``nb`` bits."""
    value, offset = rep.read(acc, nb, 0, Limits())
    assert offset == nb
    return value


@pytest.mark.parametrize(
    "text, expected",
    [
        # §7.1.3: Boolean sign, Unsigned Integer integral part, Unsigned
        # Integer of the fractional digits in reverse order.
        ("12.34", bits((0, 1), ("u", 12), ("u", 43))),
        ("-0.05", bits((1, 1), ("u", 0), ("u", 50))),
        ("300", bits((0, 1), ("u", 300), ("u", 0))),
        ("12.340", bits((0, 1), ("u", 12), ("u", 43))),
    ],
)
def test_decimal(text, expected):
    """Decimal values are written as sign, integral part, reversed fraction digits."""
    rep = rep_of("decimal")
    value = rep.from_text(text)
    assert encode(rep, value) == expected
    assert decode(rep, *expected) == Decimal(text)


@pytest.mark.parametrize(
    "value, expected",
    [
        # §7.1.4: Integer mantissa, Integer base-10 exponent (Integer §7.1.5:
        # sign bit, then the magnitude, minus one when negative).
        (1.5, bits((0, 1), ("u", 15), (1, 1), ("u", 0))),
        (-250.0, bits((1, 1), ("u", 24), (0, 1), ("u", 1))),
        (0.0, bits((0, 1), ("u", 0), (0, 1), ("u", 0))),
        # INF / -INF / NaN: exponent -(2**14), mantissa 1 / -1 / other.
        (math.inf, bits((0, 1), ("u", 1), (1, 1), ("u", 2**14 - 1))),
        (-math.inf, bits((1, 1), ("u", 0), (1, 1), ("u", 2**14 - 1))),
    ],
)
def test_float(value, expected):
    """Floats are a decimal mantissa and exponent; the specials use exponent -(2**14)."""
    rep = rep_of("double")
    assert encode(rep, value) == expected
    assert decode(rep, *expected) == value


def test_float_nan_and_lexical_forms():
    """NaN round-trips; the XML forms INF, -INF, NaN and 1.5E3 are read."""
    rep = rep_of("float")
    assert math.isnan(decode(rep, *encode(rep, math.nan)))
    assert rep.from_text("-INF") == -math.inf and rep.from_text("1.5E3") == 1500.0
    assert rep.to_text(math.inf) == "INF"


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        # §7.1.8: Year = Integer offset from 2000, MonthDay = 9 bits
        # (month * 32 + day), Time = 17 bits ((hour * 64 + minute) * 64 +
        # second), presence bit then reversed FractionalSecs digits, presence
        # bit then TimeZone = 11 bits (hours * 64 + minutes + 896).
        ("dateTime", "2024-03-15T10:20:30Z",
         bits((0, 1), ("u", 24), (3 * 32 + 15, 9), ((10 * 64 + 20) * 64 + 30, 17), (0, 1), (1, 1), (896, 11))),
        ("dateTime", "1999-12-31T23:59:59.05",
         bits((1, 1), ("u", 0), (12 * 32 + 31, 9), ((23 * 64 + 59) * 64 + 59, 17), (1, 1), ("u", 50), (0, 1))),
        ("date", "2030-01-02-05:30", bits((0, 1), ("u", 30), (1 * 32 + 2, 9), (1, 1), (-5 * 64 - 30 + 896, 11))),
        ("time", "08:00:00+01:00", bits((8 * 64 * 64, 17), (0, 1), (1, 1), (64 + 896, 11))),
        ("gYear", "2026", bits((0, 1), ("u", 26), (0, 1))),
        ("gYearMonth", "2026-11", bits((0, 1), ("u", 26), (11 * 32, 9), (0, 1))),
        ("gMonthDay", "--11-24", bits((11 * 32 + 24, 9), (0, 1))),
        ("gDay", "---24", bits((24, 9), (0, 1))),
        ("gMonth", "--11", bits((11 * 32, 9), (0, 1))),
    ],
)
def test_date_time_family(kind, text, expected):
    """Every date-time type is written as the §7.1.8 components of its kind and reads back to the same text."""
    rep = rep_of(kind)
    value = rep.from_text(text)
    assert encode(rep, value) == expected
    assert decode(rep, *expected) == text


def test_date_time_rejects_bad_text():
    """A value that is not of the type is an ExiError, not a crash."""
    with pytest.raises(ExiError):
        rep_of("dateTime").from_text("2024-03-15 10:20")


def test_list_of_integers():
    """§7.1.11: a list is its item count as an Unsigned Integer, then each item in its own representation."""
    item = SimpleType(name=None, builtin="int")
    rep = representation(SimpleType(name=None, variety="list", builtin="anySimpleType", item=item))
    value = rep.from_text(" 5 -3 70000 ")
    assert value == [5, -3, 70000]
    expected = bits(("u", 3), (0, 1), ("u", 5), (1, 1), ("u", 2), (0, 1), ("u", 70000))
    assert encode(rep, value) == expected
    assert decode(rep, *expected) == value
    assert rep.to_text(value) == "5 -3 70000"


def test_list_length_limit():
    """A list longer than the configured limit is refused while decoding."""
    item = SimpleType(name=None, builtin="boolean")
    rep = representation(SimpleType(name=None, variety="list", builtin="anySimpleType", item=item))
    acc, nb = bits(("u", 5), (0b10101, 5))
    with pytest.raises(ExiError, match="limit"):
        rep.read(acc, nb, 0, Limits(max_list=4))
