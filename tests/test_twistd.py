"""
``twistd evsev2g`` as a user runs it: a real subprocess.
"""

import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evsev2g.v2gtp import build_frame

from tests.conftest import REPO_ROOT
from tests.netclient import converse, tls12_client_context

TWISTD = str(Path(sys.executable).parent / "twistd")


def twistd_command(*settings: str) -> list[str]:
    """
    The README's run command: ``twistd -n evsev2g`` with ``tap_config.yaml``
    and one ``--set`` per setting (no pid file, so runs never clash).
    """
    overrides = [arg for setting in settings for arg in ("--set", setting)]
    return [TWISTD, "-n", "--pidfile=", "evsev2g", "--config", str(REPO_ROOT / "tap_config.yaml"), *overrides]


def twistd(*args, timeout=60):
    """Run twistd with evsev2g's options; returns the CompletedProcess."""
    return subprocess.run(
        [TWISTD, "-n", "--pidfile=", "evsev2g", *args], capture_output=True, text=True, timeout=timeout, cwd="/"
    )


def test_help_lists_the_options():
    """`twistd evsev2g --help` works and shows --config and --set."""
    result = subprocess.run([TWISTD, "evsev2g", "--help"], capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "--config=" in result.stdout and "--set=" in result.stdout


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tls_securty: allow\n", "tls_securty: unknown key (did you mean 'tls_security'?)"),
        ("tls_timeout: soon\n", "tls_timeout: 'soon' is not allowed (allowed: a whole number from 100 to 600000 ms)"),
        ("tls_port: 443\n", "tls_port: 443 is not allowed (allowed: a whole number from 49152 to 65535, or 0"),
        ("device: nosuch9\n", "device: 'nosuch9' does not exist; would do: "),
        ("device: [eth0\n", "config: not valid YAML at line 2"),
    ],
)
def test_config_errors_exit_with_one_line(tmp_path, text, expected):
    """Unknown key, wrong type, out of range, missing device, bad YAML: exit 1 and one line naming the key."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = twistd("--config", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_port_in_use_exits_non_zero_with_one_log_line():
    """A fixed port already taken: twistd logs one line saying which and exits 1."""
    with socket.socket(socket.AF_INET6) as blocker:
        taken = bind_in_dynamic_range(blocker)
        blocker.listen()
        result = twistd("--set", "device=lo", "--set", "tls_security=prohibit", "--set", "sdp_port=0", "--set", f"tcp_port={taken}")
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if "cannot start" in line]
    assert line.endswith(f"cannot start: TCP server: cannot listen on [::1]:{taken}: Address already in use")


def bind_in_dynamic_range(sock) -> int:
    """Bind a socket on ::1 to a free port in 49152-65535; returns the port."""
    for candidate in random.sample(range(49152, 65536), 50):
        try:
            sock.bind(("::1", candidate))
            return candidate
        except OSError:
            continue
    raise AssertionError("no free port in 49152-65535")


def wait_for_line(process, needle, timeout=20.0, seen=None) -> str:
    """
    Read the process's stdout until a line containing ``needle``.

    :param seen: a list to keep every line read in (the whole log so far),
        or ``None``.
    """
    deadline = time.monotonic() + timeout
    seen = [] if seen is None else seen
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not seen in:\n{''.join(seen)}")


def test_serves_on_lo_and_stops_cleanly(test_pki, tmp_path):
    """The README's run command on lo serves TCP and TLS with a test PKI, gives each payload to the session (which logs the undecodable bytes), and stops on SIGTERM with status 0."""
    process = subprocess.Popen(
        twistd_command("device=lo", f"certs_dir={test_pki.directory}", "tcp_port=0", "tls_port=0", "sdp_port=0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path),
    )
    try:
        line = wait_for_line(process, "evsev2g 0.")
        words = line.replace(",", "").split()
        tcp_port = int(words[words.index("TCP") + 2])
        tls_port = int(words[words.index("TLS") + 2])
        frame = build_frame(0x8001, b"\x80\x00\xf3\xab")
        converse(tcp_port, [frame], read_for=0.5)
        secure = converse(tls_port, [frame], context=tls12_client_context(), read_for=0.5)
        assert secure.tls == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
        # the session closes each connection: the 4 bytes are no EXI handshake
        wait_for_line(process, "Payload: 8000f3ab")
        wait_for_line(process, "Payload: 8000f3ab")
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # twistd ends by re-raising the signal it stopped for, so the status is -SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM), rest
    assert "Server Shut Down." in rest
    assert "Traceback" not in rest
