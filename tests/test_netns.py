"""
SDP, TCP and TLS between two network namespaces joined by a veth pair:
IPv6 link-local addresses only, SDP requests multicast to ff02::1, the SECC
a real ``twistd evsev2g`` in one namespace, the EV a plain-socket script in
the other.  Needs root (or CAP_NET_ADMIN); skipped with the kernel's reason
only where creating a namespace is refused (a failure in CI).

Names start with ``ev2gsk`` (namespaces) and ``vsk`` (veth) and carry a
random part, so parallel runs never collide; they are deleted afterwards,
also on failure.
"""

import json
import secrets
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from tests.independent import independent_check_unavailable
from tests.test_twistd import twistd_command, wait_for_line

pytestmark = pytest.mark.netns

PROBE = str(Path(__file__).with_name("netns_ev_probe.py"))


def ip(*args, check=True):
    """Run one `ip` command."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


class NetnsPair:
    """
    Two namespaces with a veth pair, link-local addresses from the kernel, DAD off.

    :param tag: the test module's own part of the names: namespaces are
        ``ev2g<tag>…``, veth ends ``v<tag>…``, then a random part, so
        modules and parallel runs never collide.
    """

    def __init__(self, tag: str = "sk"):
        unique = tag + secrets.token_hex(3)
        self.secc_ns, self.ev_ns = f"ev2g{unique}s", f"ev2g{unique}e"
        self.secc_if, self.ev_if = f"v{unique}s", f"v{unique}e"

    def create(self):
        """Build the pair; raises CalledProcessError when the kernel refuses."""
        ip("netns", "add", self.secc_ns)
        ip("netns", "add", self.ev_ns)
        ip("link", "add", self.secc_if, "netns", self.secc_ns, "type", "veth", "peer", "name", self.ev_if, "netns", self.ev_ns)
        for ns, iface in ((self.secc_ns, self.secc_if), (self.ev_ns, self.ev_if)):
            subprocess.run(
                ["ip", "netns", "exec", ns, "sh", "-c", f"echo 0 > /proc/sys/net/ipv6/conf/{iface}/accept_dad"],
                check=True, capture_output=True, timeout=30,
            )
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", iface, "up")
        for ns, iface in ((self.secc_ns, self.secc_if), (self.ev_ns, self.ev_if)):
            self.wait_for_link_local(ns, iface)

    def wait_for_link_local(self, ns, iface, timeout=10.0):
        """Wait until the kernel has given the interface a usable fe80:: address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = ip("-n", ns, "-6", "addr", "show", "dev", iface, "scope", "link").stdout
            if "fe80::" in shown and "tentative" not in shown:
                return
            time.sleep(0.05)
        raise AssertionError(f"{iface} in {ns} got no link-local address")

    def link_local(self, ns, iface) -> str:
        """The interface's link-local address."""
        shown = ip("-n", ns, "-6", "addr", "show", "dev", iface, "scope", "link").stdout
        return shown.split("inet6 ")[1].split("/")[0]

    def delete(self):
        """Remove both namespaces (and with them the veth pair), retrying while the kernel says busy."""
        for ns in (self.secc_ns, self.ev_ns):
            for _ in range(20):
                if ns not in ip("netns", "list").stdout.split():
                    break
                ip("netns", "del", ns, check=False)
                time.sleep(0.1)
            else:
                warnings.warn(f"network namespace {ns} could not be deleted; remove it with: ip netns del {ns}")


def prepared(pair):
    """
    Create ``pair`` for one test (module) and remove it afterwards, also on
    failure; skips only where the kernel refuses namespaces (fails in CI).
    """
    if shutil.which("ip") is None:
        independent_check_unavailable("iproute2 (the `ip` command) is not installed; .ci/run installs it")
    try:
        ip("netns", "add", pair.secc_ns)
    except subprocess.CalledProcessError as error:
        independent_check_unavailable(f"the kernel refused a network namespace: {error.stderr.strip()}")
    ip("netns", "del", pair.secc_ns)
    try:
        pair.create()
        yield pair
    finally:
        pair.delete()


@pytest.fixture(scope="module")
def netns_pair():
    """A veth pair between two fresh namespaces; skips only where the kernel refuses namespaces (fails in CI)."""
    yield from prepared(NetnsPair())


class SECC:
    """twistd evsev2g running in the SECC namespace."""

    def __init__(self, pair, *settings):
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", pair.secc_ns, *twistd_command(*settings)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/",
        )
        self.lines = []

    def wait_for(self, needle, timeout=20.0) -> str:
        """Read the log until a line containing ``needle``; :attr:`lines` keeps all read."""
        return wait_for_line(self.process, needle, timeout, self.lines)

    def stop(self):
        """SIGTERM, then wait; kill if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                rest, _ = self.process.communicate(timeout=15)
                self.lines.append(rest)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def probe(pair, wanted, *flags) -> dict:
    """Run the EV-side script in the EV namespace."""
    result = subprocess.run(
        ["ip", "netns", "exec", pair.ev_ns, sys.executable, PROBE, pair.ev_if, wanted, *flags],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "mode, device, answers",
    [
        ("prohibit", "named", {"tls": (61341, 0x10), "no-tls": (61341, 0x10)}),
        # ISO 15118-2 runs over TLS: allow gives an EV asking for TLS the
        # TLS server, one asking for TCP the TCP server.
        ("allow", "auto", {"tls": (64109, 0x00), "no-tls": (61341, 0x10)}),
        ("force", "named", {"tls": (64109, 0x00), "no-tls": (64109, 0x00)}),
    ],
)
def test_sdp_and_connection_across_namespaces(netns_pair, test_pki, mode, device, answers):
    """Multicast SDP to ff02::1 gets a unicast answer with our link-local address; the security byte follows tls_security; the announced server takes V2GTP; force leaves no plain TCP server."""
    pair = netns_pair
    secc_address = pair.link_local(pair.secc_ns, pair.secc_if)
    ev_address = pair.link_local(pair.ev_ns, pair.ev_if)
    secc = SECC(
        pair,
        f"device={pair.secc_if if device == 'named' else 'auto'}",
        f"tls_security={mode}",
        f"certs_dir={test_pki.directory}",
    )
    try:
        secc.wait_for(f"on {pair.secc_if} [{secc_address}]")
        for wanted, (port, security) in answers.items():
            result = probe(pair, wanted, "--malformed")
            assert result["malformed_answered"] is False
            assert (result["header"], result["length"], result["transport"]) == ("01fe900100000014", 28, 0)
            assert (result["address"], result["port"], result["security"]) == (secc_address, port, security)
            assert result["sender"].split("%")[0] == secc_address
            if security == 0x00:
                assert result["connection"]["tls"] == ["TLSv1.2", "ECDHE-ECDSA-AES128-SHA256"]
            assert result["tcp_61341_open"] == (mode != "force")
            secc.wait_for(f"[{ev_address}%{pair.secc_if}]:")
            secc.wait_for("Payload: 8000ee01")
    finally:
        secc.stop()
    log = "".join(secc.lines)
    assert "SDP: dropped a datagram from" in log
    # ISO 15118-2 (enabled by default) runs over TLS: the TLS server is useful.
    assert "SDP answers TCP to EVs that ask for TLS" not in log
    assert "Traceback" not in log
