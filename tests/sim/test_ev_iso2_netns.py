"""
Whole ISO 15118-2 sessions between network namespaces: the SECC (``twistd
evsev2g`` with the simulated charger, TCP and TLS) in one, the EV simulator
(``python -m evsev2g.sim.ev --protocol iso15118-2``) in the other, joined by
a veth pair with link-local addresses only; the EV finds the SECC with SDP
multicast to ff02::1, asking for TLS when it wants it.  Needs root (or
CAP_NET_ADMIN); skipped with the kernel's reason only where creating a
namespace is refused.

Namespaces are named ``ev2gis…`` and veth ends ``vis…`` (random part).
"""

import subprocess
import sys

import pytest

from evsev2g.security import layout
from tests.test_netns import SECC, NetnsPair, prepared

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def iso2_pair():
    """A fresh veth pair between two namespaces, removed afterwards."""
    yield from prepared(NetnsPair("is"))


def run_ev(pair, *flags):
    """The EV simulator in the EV namespace; :returns: the finished process."""
    return subprocess.run(
        ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
         "--protocol", "iso15118-2", "--capacity", "60", "--start-soc", "70", "--target-soc", "75", "--interval", "0.01",
         *flags],
        capture_output=True, text=True, timeout=90,
    )


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_iso2_sessions_over_tcp_and_tls_with_a_pause(iso2_pair, test_pki, mode):
    """
    One twistd SECC (AC or DC, tls_security allow): the EV simulator finds it
    with SDP and charges over TCP; then, asking SDP for TLS and verifying the
    chain against the V2G root, it charges over TLS 1.2, pausing once and
    resuming with its SessionID on a new TLS connection.
    """
    pair = iso2_pair
    secc_address = pair.link_local(pair.secc_ns, pair.secc_if)
    secc = SECC(
        pair, f"device={pair.secc_if}", "tls_security=allow", f"certs_dir={test_pki.directory}",
        f"simulator.mode={mode}", "simulator.auth_delay_ms=100", "simulator.cable_check_ms=100",
        "simulator.voltage_slew_rate=2000", "simulator.ac_contactor_delay_ms=20",
    )
    try:
        secc.wait_for(f"on {pair.secc_if} [{secc_address}]")
        tcp = run_ev(pair, "--mode", mode, "--current-demands", "20")
        assert tcp.returncode == 0, tcp.stdout + tcp.stderr
        assert "stopped cleanly" in tcp.stdout
        tls = run_ev(pair, "--mode", mode, "--current-demands", "20", "--tls", "--v2g-root",
                     str(test_pki.path(layout.V2G_ROOT)), "--pause-after", "5", "--pause-seconds", "0.2")
        assert tls.returncode == 0, tls.stdout + tls.stderr
        for state in ("handshake", "authorization", "charging", "pausing", "paused", "session stopped"):
            assert f"EV {state}" in tls.stdout, state
        assert tls.stdout.count("EV connecting") == 2
        secc.wait_for("dlink_terminate")
    finally:
        secc.stop()
    log = "".join(secc.lines)
    assert "Traceback" not in log
    assert "TLS" in log
