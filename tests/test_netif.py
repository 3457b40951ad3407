"""Tests for :mod:`evsev2g.netif`: which interface and address to serve on."""

import pytest

from evsev2g.errors import ConfigError
from evsev2g.netif import ServingAddress, parse_if_inet6, read_addresses, resolve_device
from evsev2g.testing import if_inet6_line

HOST = "\n".join(
    [
        if_inet6_line("lo", 1, "::1"),
        if_inet6_line("eth0", 2, "fd00::2"),
        if_inet6_line("wlan0", 4, "fe80::4"),
        if_inet6_line("eth1", 3, "fe80::3"),
        if_inet6_line("eth1", 3, "2001:db8::3"),
        if_inet6_line("plc0", 5, "fe80::5", flags=0x40),
        "garbage line",
    ]
)
ADDRESSES = parse_if_inet6(HOST)
EXISTING = ["lo", "eth0", "eth1", "wlan0", "plc0", "can0"]


def test_parse_skips_malformed_lines():
    """Each well-formed line gives one entry with name, index and compressed address."""
    assert len(ADDRESSES) == 6
    assert ADDRESSES[3].interface == "eth1" and ADDRESSES[3].index == 3 and ADDRESSES[3].address == "fe80::3"
    assert ADDRESSES[3].link_local and ADDRESSES[3].usable
    assert not ADDRESSES[5].usable


def test_named_device_serves_its_link_local_address():
    """A named interface serves on its link-local address, scoped to it."""
    serving = resolve_device("eth1", ADDRESSES, EXISTING)
    assert serving == ServingAddress("eth1", 3, "fe80::3")
    assert serving.host == "fe80::3%eth1"
    assert serving.packed == bytes.fromhex("fe800000000000000000000000000003")


def test_auto_takes_the_lowest_index_with_a_usable_link_local_address():
    """auto: first interface by index with a link-local address past DAD."""
    assert resolve_device("auto", ADDRESSES, EXISTING).interface == "eth1"


def test_lo_serves_on_loopback():
    """lo serves on ::1, unscoped, for local use."""
    serving = resolve_device("lo", ADDRESSES, EXISTING)
    assert (serving.interface, serving.address, serving.host) == ("lo", "::1", "::1")
    assert serving.scoped("::1") == "::1"


@pytest.mark.parametrize(
    "device, problem",
    [
        ("eth7", "'eth7' does not exist"),
        ("can0", "'can0' has no IPv6 link-local address"),
        ("eth0", "'eth0' has no IPv6 link-local address"),
        ("plc0", "'plc0' has an IPv6 link-local address, but duplicate address detection has not finished or failed"),
    ],
)
def test_unusable_device_names_the_interfaces_that_would_do(device, problem):
    """A missing device or one without a usable link-local address: one line listing those that would do."""
    with pytest.raises(ConfigError) as caught:
        resolve_device(device, ADDRESSES, EXISTING)
    assert str(caught.value) == f"device: {problem}; would do: eth1, wlan0, lo"


def test_auto_without_candidates():
    """auto on a host with only loopback says so and suggests lo."""
    with pytest.raises(ConfigError, match=r"^device: 'auto' found no interface .* would do: none but 'lo'"):
        resolve_device("auto", parse_if_inet6(if_inet6_line("lo", 1, "::1")), ["lo"])


def test_scoped_reply_address():
    """Replies to link-local peers carry the serving interface as scope."""
    serving = ServingAddress("eth1", 3, "fe80::3")
    assert serving.scoped("fe80::99") == "fe80::99%eth1"
    assert serving.scoped("fe80::99%whatever") == "fe80::99%eth1"
    assert serving.scoped("2001:db8::1") == "2001:db8::1"


def test_this_host_has_loopback():
    """The real /proc table parses and lo resolves (IPv6 is on in CI)."""
    assert resolve_device("lo", read_addresses()).address == "::1"
