"""
Plug & Charge between network namespaces: ``twistd evsev2g`` (TLS forced,
the PnC simulated backend, ``verify_contract_cert_chain``) in one, the EV
simulator (``python -m evsev2g.sim.ev --pnc``) in the other, veth with
link-local addresses, SDP multicast asking for TLS.  Needs root (or
CAP_NET_ADMIN); skipped with the kernel's reason only where creating a
namespace is refused.  Namespaces ``ev2gpn…``, veth ends ``vpn…``.
"""

import subprocess
import sys

import pytest

from evsev2g.security import layout
from evsev2g.sim.ev_pnc import ev_directory
from tests.test_netns import SECC, NetnsPair, prepared

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def pnc_pair():
    """A fresh veth pair between two namespaces, removed afterwards."""
    yield from prepared(NetnsPair("pn"))


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_pnc_session_with_installation_across_namespaces(pnc_pair, test_pki, tmp_path, mode):
    """
    The EV without a contract finds the SECC by SDP, connects over TLS 1.2
    (chain checked against its V2G root), has its contract installed by the
    simulated backend, authorizes with a signed AuthorizationReq and charges
    (DC or AC) to its target; the SECC logs no warning and no traceback.
    """
    pair = pnc_pair
    address = pair.link_local(pair.secc_ns, pair.secc_if)
    secc = SECC(
        pair, f"device={pair.secc_if}", "tls_security=force", f"certs_dir={test_pki.directory}",
        "simulator.pnc=true", "verify_contract_cert_chain=true", "simulator.auth_delay_ms=100",
        "simulator.cable_check_ms=100", "simulator.voltage_slew_rate=2000", "simulator.certificate_delay_ms=100",
        f"simulator.mode={mode}", "simulator.ac_contactor_delay_ms=20",
    )
    try:
        secc.wait_for(f"on {pair.secc_if} [{address}]")
        ev = subprocess.run(
            ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
             "--protocol", "iso15118-2", "--mode", mode, "--tls", "--pnc", "--certs-dir", str(ev_directory(test_pki.directory, tmp_path / "ev", with_contract=False)),
             "--v2g-root", str(test_pki.path(layout.V2G_ROOT)), "--capacity", "60", "--start-soc", "70",
             "--target-soc", "75", "--interval", "0.01", "--current-demands", "20"],
            capture_output=True, text=True, timeout=90,
        )
        assert ev.returncode == 0, ev.stdout + ev.stderr
        for state in ("certificate installation", "payment details", "authorization", "charging", "session stopped"):
            assert f"EV {state}" in ev.stdout, state
        secc.wait_for("dlink_terminate")
    finally:
        secc.stop()
    log = "".join(secc.lines)
    assert "Traceback" not in log
    assert "#warn]" not in log and "#error]" not in log, log
