"""
A whole DIN DC session between network namespaces: the SECC (``twistd
evsev2g`` with the simulated charger) in one, the EV simulator
(``python -m evsev2g.sim.ev``) in the other, joined by a veth pair with
link-local addresses only; the EV finds the SECC with SDP multicast to
ff02::1.  Needs root (or CAP_NET_ADMIN); skipped with the kernel's reason
only where creating a namespace is refused.

Namespaces are named ``ev2gco…`` and veth ends ``vco…`` (random part, so
parallel runs never collide) and are deleted afterwards, also on failure.
"""

import subprocess
import sys

import pytest

from tests.test_netns import SECC, NetnsPair, prepared

pytestmark = pytest.mark.netns


@pytest.fixture
def core_pair():
    """A fresh veth pair between two namespaces, removed afterwards."""
    yield from prepared(NetnsPair("co"))


def test_whole_session_found_with_sdp_across_namespaces(core_pair):
    """The EV simulator discovers the SECC with SDP across namespaces and charges to its target: exit 0."""
    pair = core_pair
    secc_address = pair.link_local(pair.secc_ns, pair.secc_if)
    secc = SECC(
        pair,
        f"device={pair.secc_if}",
        "tls_security=prohibit",
        "simulator.auth_delay_ms=100",
        "simulator.cable_check_ms=100",
        "simulator.voltage_slew_rate=2000",
    )
    try:
        secc.wait_for(f"on {pair.secc_if} [{secc_address}]")
        ev = subprocess.run(
            ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
             "--capacity", "50", "--start-soc", "70", "--target-soc", "75", "--interval", "0.01"],
            capture_output=True, text=True, timeout=60,
        )
        assert ev.returncode == 0, ev.stdout + ev.stderr
        assert "stopped cleanly" in ev.stdout
        for state in ("handshake", "authorization", "cable check", "pre-charge", "charging", "welding detection", "session stopped"):
            assert f"EV {state}" in ev.stdout, state
        secc.wait_for("DIN session ends (session over)")
    finally:
        secc.stop()
    log = "".join(secc.lines)
    assert "Traceback" not in log
    assert f"%{pair.secc_if}]" in log
