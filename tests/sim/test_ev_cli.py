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


def test_din_with_ac_or_tls_is_a_usage_error():
    """DIN 70121 is DC over TCP: --mode ac or --tls without --protocol iso15118-2 is a usage error saying so."""
    for flags in (["--mode", "ac"], ["--tls"]):
        result = run("--host", "::1", *flags)
        assert result.returncode == 2 and "DC over TCP only" in result.stderr, flags


def test_tls_to_a_plain_tcp_server_exits_1():
    """--tls against a server that only speaks TCP: the TLS handshake fails, exit 1 with the reason."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
        server.bind(("::1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        import threading

        def answer_garbage():
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(b"\x01\xfe\x80\x01\x00\x00\x00\x00")

        threading.Thread(target=answer_garbage, daemon=True).start()
        result = run("--host", "::1", "--port", str(port), "--protocol", "iso15118-2", "--tls", "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TLS" in result.stderr and "exit 1" in result.stderr
