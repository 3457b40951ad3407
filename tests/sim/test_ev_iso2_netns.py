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

import os
import subprocess
import sys

import pytest

from evsev2g.security import layout
from tests.test_netns import SECC, NetnsPair, prepared
from tests.test_twistd import twistd_command

pytestmark = pytest.mark.netns


class EnvironmentSECC(SECC):
    """:class:`tests.test_netns.SECC` with its own environment (drop-in plugins read theirs from it)."""

    def __init__(self, pair, *settings, env):
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", pair.secc_ns, *twistd_command(*settings)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/", env=env,
        )
        self.lines = []


@pytest.fixture(scope="module")
def iso2_pair():
    """A fresh veth pair between two namespaces, removed afterwards."""
    yield from prepared(NetnsPair("is"))


def run_ev(pair, *flags):
    """
    The EV simulator in the EV namespace (timeouts relaxed: a busy machine
    must not fail the test); :returns: the finished process.
    """
    return subprocess.run(
        ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
         "--protocol", "iso15118-2", "--capacity", "60", "--start-soc", "70", "--target-soc", "75", "--interval", "0.01",
         "--msg-timeout", "10", "--loop-timeout", "10", *flags],
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
        assert tls.stdout.count("EV connecting") == 2 and tls.stdout.count("EV discovery") == 2  # SDP again after the pause
        secc.wait_for("dlink_terminate")
    finally:
        secc.stop()
    log = "".join(secc.lines)
    assert "Traceback" not in log
    assert "TLS" in log


def test_internet_access_chosen_end_to_end_over_tls(iso2_pair, test_pki, tmp_path):
    """
    twistd with the Internet-access drop-in configured (http, https) and its
    setup program: the EV simulator over TLS sees ServiceID 3 in
    ServiceDiscovery, reads its parameter sets with ServiceDetail, chooses
    set 4 (https) in PaymentServiceSelection; the provider runs the setup
    program with ``start 443`` and the session charges to the end.
    """
    pair = iso2_pair
    chosen = tmp_path / "chosen.txt"
    environment = dict(
        os.environ, EVSEV2G_INTERNET_ACCESS="http,https",
        EVSEV2G_INTERNET_ACCESS_SETUP=f"sh -c 'echo \"$@\" > {chosen}' setup",
    )
    secc = EnvironmentSECC(
        pair, f"device={pair.secc_if}", "tls_security=allow", f"certs_dir={test_pki.directory}",
        "simulator.auth_delay_ms=100", "simulator.cable_check_ms=100", "simulator.voltage_slew_rate=2000",
        env=environment,
    )
    try:
        secc.wait_for(f"on {pair.secc_if} [")
        ev = run_ev(pair, "--current-demands", "10", "--tls", "--v2g-root", str(test_pki.path(layout.V2G_ROOT)),
                    "--service", "3", "--parameter-set", "4")
        assert ev.returncode == 0, ev.stdout + ev.stderr
        assert "EV chose service 3, parameter set 4" in ev.stdout
        assert "EV service detail" in ev.stdout
        secc.wait_for("dlink_terminate")
    finally:
        secc.stop()
    assert chosen.read_text().split() == ["start", "443"]
    assert "Traceback" not in "".join(secc.lines)


def test_charger_initiated_pause_from_the_configuration(iso2_pair, test_pki):
    """
    twistd with simulator.pause_after_ms: the simulated charger pauses 0.3 s
    into charging; the EV hears StopCharging, pauses (SessionStop Pause),
    finds the SECC again with SDP and resumes with its SessionID
    (OK_OldSessionJoined); the pause is once per run, so it charges on.
    """
    pair = iso2_pair
    secc = SECC(
        pair, f"device={pair.secc_if}", "tls_security=prohibit", "simulator.auth_delay_ms=100",
        "simulator.cable_check_ms=100", "simulator.voltage_slew_rate=2000", "simulator.pause_after_ms=300",
    )
    try:
        secc.wait_for(f"on {pair.secc_if} [")
        ev = run_ev(pair, "--current-demands", "60", "--on-stop-charging", "pause", "--pause-seconds", "0.2")
        assert ev.returncode == 0, ev.stdout + ev.stderr
        assert "EV paused" in ev.stdout and "EV SessionSetup: OK_OldSessionJoined" in ev.stdout
        secc.wait_for("dlink_terminate")
    finally:
        secc.stop()
    log = "".join(secc.lines)
    assert "pause_charging(True)" in log and "dlink_pause" in log and "Traceback" not in log
