"""``python -m evsev2g demo`` with the ISO 15118-2 flags, as a user runs it."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def demo(*flags):
    """Run the demo with a small battery; :returns: the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "evsev2g", "demo", "--auth-delay-ms", "100", "--capacity", "60", "--start-soc", "70",
         "--target-soc", "76", *flags],
        capture_output=True, text=True, timeout=120, cwd=str(REPO_ROOT),
    )


def test_ac_over_tls_with_a_pause():
    """--protocol iso15118-2 --mode ac --tls --pause: TLS 1.2, the AC contactor, a pause and OK_OldSessionJoined, exit 0."""
    result = demo("--protocol", "iso15118-2", "--mode", "ac", "--tls", "--pause", "--target-soc", "95")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for shown in ("Throw-away test PKI", "(TLS)", "require_auth_eim", "ac_close_contactor", "EV charging", "EV paused",
                  "dlink_pause", "ac_open_contactor", "dlink_terminate", "TLS: TLSv1.2, ECDHE-ECDSA-AES128-SHA256",
                  "SessionSetup: OK_NewSessionEstablished", "SessionSetup: OK_OldSessionJoined", "ChargingStatusRes latency",
                  "Session OK"):
        assert shown in out, shown
    assert "Traceback" not in result.stderr


def test_dc_over_tcp():
    """--protocol iso15118-2 --mode dc: cable check, pre-charge, CurrentDemand, exit 0."""
    result = demo("--protocol", "iso15118-2", "--mode", "dc")
    assert result.returncode == 0, result.stdout + result.stderr
    for shown in ("(TCP)", "start_cable_check", "start_pre_charge", "current_demand_started", "dc_open_contactor",
                  "CurrentDemandRes latency", "Session OK"):
        assert shown in result.stdout, shown


@pytest.mark.parametrize("flags", [["--mode", "ac"], ["--tls"], ["--pause"]])
def test_iso_flags_need_iso(flags):
    """AC, TLS and pause with DIN: one line saying why, exit 2."""
    result = demo(*flags)
    assert result.returncode == 2 and "need --protocol iso15118-2" in result.stderr


def test_charger_pause():
    """--charger-pause: the charger pauses 2 s into charging, the EV pauses (dlink_pause) and resumes with its SessionID; exit 0."""
    result = demo("--protocol", "iso15118-2", "--charger-pause", "--capacity", "200", "--target-soc", "80")
    assert result.returncode == 0, result.stdout + result.stderr
    for shown in ("EV paused", "dlink_pause", "SessionSetup: OK_OldSessionJoined", "Session OK"):
        assert shown in result.stdout, shown
