"""
Bit-level reading and writing for the parts of the codec that are not
generated (fragments, second-level events, datatype helpers).

The hot paths work on the same representation inline (see ``codegen``): the
whole stream is one Python ``int`` (``v``, ``n`` bits, most significant bit
first) read at bit offset ``p``; output is accumulated into an ``int``
(``acc``) with a bit count (``nb``).  Reading past the end makes the shift
count negative, which Python reports as ``ValueError``: the callers turn that
into :class:`~evsev2g.exi.errors.ExiError` "truncated".
"""

from __future__ import annotations

from evsev2g.exi.errors import ExiError, LimitExceeded

__all__ = ["read_bits", "read_uint", "write_uint", "to_bytes", "BitReader", "BitWriter", "MAX_UINT_OCTETS"]

#: Longest Unsigned Integer accepted on decode, in 7-bit groups (1 120 bits).
MAX_UINT_OCTETS = 160


def read_bits(v: int, n: int, p: int, k: int) -> tuple[int, int]:
    """
    :param v: the stream as an int; :param n: its length in bits;
    :param p: the bit offset; :param k: how many bits.
    :returns: ``(value, new offset)``.
    :raises ExiError: when fewer than ``k`` bits are left.
    """
    if p + k > n:
        raise ExiError("truncated: stream ends inside a value", bit=p)
    return (v >> (n - p - k)) & ((1 << k) - 1), p + k


def read_uint(v: int, n: int, p: int) -> tuple[int, int]:
    """
    An Unsigned Integer (§7.1.6): 7-bit groups, least significant first, the
    high bit of each octet set when another follows.

    :returns: ``(value, new offset)``.
    :raises ExiError: when truncated or longer than :data:`MAX_UINT_OCTETS`.
    """
    value = 0
    shift = 0
    for _ in range(MAX_UINT_OCTETS):
        if p + 8 > n:
            raise ExiError("truncated: stream ends inside an unsigned integer", bit=p)
        octet = (v >> (n - p - 8)) & 0xFF
        p += 8
        value |= (octet & 0x7F) << shift
        if octet < 0x80:
            return value, p
        shift += 7
    raise LimitExceeded(f"unsigned integer longer than {MAX_UINT_OCTETS} octets", bit=p)


def write_uint(acc: int, nb: int, value: int) -> tuple[int, int]:
    """
    Append an Unsigned Integer (§7.1.6) to an accumulator.

    :param acc: bits written so far, as an int; :param nb: their count.
    :param value: a non-negative int.
    :returns: ``(acc, nb)`` after writing.
    """
    while value >= 0x80:
        acc = (acc << 8) | 0x80 | (value & 0x7F)
        nb += 8
        value >>= 7
    return (acc << 8) | value, nb + 8


def to_bytes(acc: int, nb: int) -> bytes:
    """
    :param acc: bits written, as an int; :param nb: their count.
    :returns: the bits padded with zeros to a whole octet.
    """
    pad = (-nb) % 8
    return (acc << pad).to_bytes((nb + pad) // 8, "big")


class BitReader:
    """
    A cursor over an EXI stream for the non-generated paths.

    :ivar v: the stream as an int; :ivar n: its length in bits;
    :ivar p: the current bit offset.
    """

    __slots__ = ("v", "n", "p")

    def __init__(self, v: int, n: int, p: int = 0) -> None:
        """:param v: stream int; :param n: bit length; :param p: start offset."""
        self.v, self.n, self.p = v, n, p

    def bits(self, k: int) -> int:
        """:returns: the next ``k`` bits as an unsigned int."""
        value, self.p = read_bits(self.v, self.n, self.p, k)
        return value

    def uint(self) -> int:
        """:returns: the next Unsigned Integer."""
        value, self.p = read_uint(self.v, self.n, self.p)
        return value


class BitWriter:
    """
    An accumulator for the non-generated encode paths.

    :ivar acc: the bits as an int; :ivar nb: how many.
    """

    __slots__ = ("acc", "nb")

    def __init__(self, acc: int = 0, nb: int = 0) -> None:
        """:param acc: initial bits; :param nb: their count."""
        self.acc, self.nb = acc, nb

    def bits(self, value: int, k: int) -> None:
        """Append ``value`` in ``k`` bits."""
        self.acc = (self.acc << k) | value
        self.nb += k

    def uint(self, value: int) -> None:
        """Append an Unsigned Integer."""
        self.acc, self.nb = write_uint(self.acc, self.nb, value)

    def to_bytes(self) -> bytes:
        """:returns: the bits padded with zeros to a whole octet."""
        return to_bytes(self.acc, self.nb)
