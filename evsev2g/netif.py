"""
Which network interface and address the SECC serves on (the ``device`` key).

Linux lists every IPv6 address in ``/proc/net/if_inet6``; this module reads
that table (or a text given by a test) and picks the link-local address SDP
announces and the TCP/TLS servers listen on.  No Twisted here.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path

import attrs

from evsev2g.errors import ConfigError

IF_INET6 = Path("/proc/net/if_inet6")

#: Address flags of ``if_inet6`` (linux/if_addr.h) that make an address
#: unusable for binding yet or at all.
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40

LOOPBACK = "lo"
AUTO = "auto"


@attrs.frozen
class InterfaceAddress:
    """
    One line of ``/proc/net/if_inet6``.

    :param interface: the interface name.
    :param index: the interface index.
    :param address: the address, compressed text without scope.
    :param scope: the kernel's scope value (0x20 link, 0x10 host, 0 global).
    :param flags: the kernel's address flags.
    """

    interface: str
    index: int
    address: str
    scope: int
    flags: int

    @property
    def link_local(self) -> bool:
        """Whether this is an fe80::/10 address."""
        return ipaddress.IPv6Address(self.address).is_link_local

    @property
    def usable(self) -> bool:
        """Whether duplicate address detection is over and did not fail."""
        return not self.flags & (_IFA_F_DADFAILED | _IFA_F_TENTATIVE)


@attrs.frozen
class ServingAddress:
    """
    Where the SECC serves: interface and IPv6 address.

    :param interface: the interface name (``lo`` for local use).
    :param index: its interface index.
    :param address: the IPv6 address without scope (``::1`` on ``lo``).
    """

    interface: str
    index: int
    address: str

    @property
    def host(self) -> str:
        """The address to bind to: scoped (``fe80::1%eth0``) when link-local."""
        return self.scoped(self.address)

    @property
    def packed(self) -> bytes:
        """The 16 address bytes SDP announces."""
        return ipaddress.IPv6Address(self.address).packed

    def scoped(self, host: str) -> str:
        """
        :param host: an IPv6 address (a peer's as Twisted reports it, or ours).
        :returns: the address to send to or bind, with ``%interface`` when
            link-local.
        """
        plain = host.split("%", 1)[0]
        if ipaddress.IPv6Address(plain).is_link_local:
            return f"{plain}%{self.interface}"
        return plain


def parse_if_inet6(text: str) -> list[InterfaceAddress]:
    """
    :param text: the content of ``/proc/net/if_inet6``.
    :returns: one :class:`InterfaceAddress` per well-formed line, in order.
    """
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6 or len(fields[0]) != 32:
            continue
        raw, index, _prefix, scope, flags, name = fields
        try:
            address = ipaddress.IPv6Address(bytes.fromhex(raw)).compressed
            found.append(InterfaceAddress(name, int(index, 16), address, int(scope, 16), int(flags, 16)))
        except ValueError:
            continue
    return found


def read_addresses(path: Path = IF_INET6) -> list[InterfaceAddress]:
    """
    :param path: where the kernel lists IPv6 addresses.
    :returns: the parsed table; empty when it cannot be read (no IPv6).
    """
    try:
        return parse_if_inet6(path.read_text())
    except OSError:
        return []


def _candidates(addresses: Iterable[InterfaceAddress]) -> list[str]:
    """Interfaces with a usable link-local address, in interface order."""
    names: dict[str, int] = {}
    for entry in addresses:
        if entry.link_local and entry.usable:
            names.setdefault(entry.interface, entry.index)
    return sorted(names, key=names.__getitem__)


def interface_names() -> list[str]:
    """:returns: the names of every network interface of this host."""
    return [name for _index, name in socket.if_nameindex()]


def resolve_device(
    device: str, addresses: Iterable[InterfaceAddress], existing: Iterable[str] = ()
) -> ServingAddress:
    """
    Turn the ``device`` key into the address to serve on.

    ``lo`` serves on ``::1``; ``auto`` takes the first interface (lowest
    index) with a usable link-local address; any other name must have one.

    :param device: the configured value.
    :param addresses: the host's IPv6 addresses (see :func:`read_addresses`).
    :param existing: names of the host's interfaces (see
        :func:`interface_names`), to tell a missing interface from one
        without IPv6.
    :returns: the :class:`ServingAddress`.
    :raises ConfigError: one line naming the interfaces that would do.
    """
    addresses = list(addresses)
    candidates = _candidates(addresses)
    would_do = ", ".join(candidates + [LOOPBACK]) if candidates else f"none but {LOOPBACK!r} (local use)"
    if device == LOOPBACK:
        for entry in addresses:
            if entry.interface == LOOPBACK and entry.address == "::1":
                return ServingAddress(LOOPBACK, entry.index, "::1")
        raise ConfigError("device", "'lo' has no ::1 address (IPv6 disabled?)")
    if device == AUTO:
        if not candidates:
            raise ConfigError("device", f"'auto' found no interface with an IPv6 link-local address; would do: {would_do}")
        device = candidates[0]
    own = [entry for entry in addresses if entry.interface == device]
    link_local = [entry for entry in own if entry.link_local]
    usable = [entry for entry in link_local if entry.usable]
    if usable:
        return ServingAddress(device, usable[0].index, usable[0].address)
    if link_local:
        problem = "has an IPv6 link-local address, but duplicate address detection has not finished or failed"
    elif own or device in existing:
        problem = "has no IPv6 link-local address"
    else:
        problem = "does not exist"
    raise ConfigError("device", f"{device!r} {problem}; would do: {would_do}")
