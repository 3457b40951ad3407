"""The README's run command, ``python -m evsev2g demo``, as a user runs it."""

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_demo_shows_a_whole_din_session():
    """The demo runs SECC, simulated charger and EV simulator on ::1 and exits 0 after a clean DIN session."""
    result = subprocess.run(
        [sys.executable, "-m", "evsev2g", "demo", "--auth-delay-ms", "100", "--capacity", "60", "--start-soc", "70", "--target-soc", "76"],
        capture_output=True, text=True, timeout=120, cwd=str(REPO_ROOT),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for shown in ("EV handshake", "require_auth_eim", "EV cable check", "start_pre_charge", "current_demand_started",
                  "EV charging", "dc_open_contactor", "dlink_terminate", "EV session stopped", "Session OK"):
        assert shown in out, shown
    assert "Traceback" not in result.stderr
