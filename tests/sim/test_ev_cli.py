"""``python -m evsev2g.sim.ev`` as a user runs it: exit status and reason."""

import socket
import subprocess
import sys


def run(*arguments):
    """Run the EV simulator's command line."""
    return subprocess.run([sys.executable, "-m", "evsev2g.sim.ev", *arguments], capture_output=True, text=True, timeout=60)


def test_no_secc_listening_exits_1_with_the_reason():
    """Nothing listens at the given address: exit 1 and a line saying it could not connect."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    result = run("--host", "::1", "--port", str(port), "--quiet")
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and "exit 1" in result.stderr


def test_where_is_required():
    """Without --interface or --host the command line says what is missing (usage error, exit 2)."""
    result = run()
    assert result.returncode == 2
    assert "--interface" in result.stderr
