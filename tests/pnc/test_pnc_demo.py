"""``python -m evsev2g demo --pnc``: the whole Plug & Charge flow from the command line."""

import subprocess
import sys


def test_demo_pnc_installs_a_contract_then_charges():
    """The demo's EV, without a contract, gets one installed, authorizes by PnC over TLS and charges; exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", "evsev2g", "demo", "--pnc", "--start-soc", "78", "--target-soc", "80", "--auth-delay-ms", "100"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("EV certificate installation", "SECC → charger: iso15118_certificate_request", "EV payment details",
                 "SECC → charger: require_auth_pnc", "TLS: TLSv1.2, ECDHE-ECDSA-AES128-SHA256",
                 "Plug & Charge: contract certificate installed by the simulated backend"):
        assert line in out, line
    assert "Session OK" in out
