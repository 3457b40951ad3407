"""
The EV side of the network-namespace tests, run with ``ip netns exec``.

Sends SDP requests to ff02::1 port 15118 on one interface the way an EV
does (resend after 250 ms, at most 50 times [V2G2-159], [V2G2-161]), then
connects to the announced address and port (TLS when announced) and sends
one V2GTP frame; finally tries a plain TCP connection to the default TCP
port 61341.  Prints one JSON object.  Plain sockets only: no evsev2g
code on the EV side.

Usage: python netns_ev_probe.py IFACE {tls,no-tls} [--malformed]
"""

import json
import socket
import struct
import sys

# Run as a script: its directory, tests/, is on sys.path.
from netclient import tls12_client_context

SDP_PORT = 15118


def sdp(iface: str, security: int, malformed: bool) -> dict:
    """One SDP exchange over multicast; returns what was answered."""
    index = socket.if_nametoindex(iface)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.settimeout(0.25)
        target = (f"ff02::1%{iface}", SDP_PORT)
        result = {"malformed_answered": None}
        if malformed:
            sock.sendto(bytes.fromhex("01fe9000000000020000ff"), target)
            try:
                sock.recv(64)
                result["malformed_answered"] = True
            except socket.timeout:
                result["malformed_answered"] = False
        request = bytes([0x01, 0xFE, 0x90, 0x00, 0, 0, 0, 2, security, 0x00])
        for attempt in range(50):
            sock.sendto(request, target)
            try:
                answer, sender = sock.recvfrom(64)
                break
            except socket.timeout:
                continue
        else:
            raise SystemExit("no SDP answer after 50 requests")
    port, security_byte, transport = struct.unpack("!HBB", answer[24:28])
    result.update(
        attempts=attempt + 1,
        header=answer[:8].hex(),
        length=len(answer),
        address=socket.inet_ntop(socket.AF_INET6, answer[8:24]),
        sender=sender[0],
        port=port,
        security=security_byte,
        transport=transport,
    )
    return result


def connect(iface: str, address: str, port: int, secure: bool) -> dict:
    """Connect to the announced server and send one V2GTP frame."""
    raw = socket.create_connection((f"{address}%{iface}", port), timeout=5)
    sock = raw
    result = {}
    if secure:
        sock = tls12_client_context().wrap_socket(raw)
        result["tls"] = [sock.version(), sock.cipher()[0]]
    sock.sendall(bytes.fromhex("01fe800100000004") + b"\x80\x00\xee\x01")
    result["local"] = sock.getsockname()[0]
    sock.close()
    return result


def plain_tcp_open(iface: str, address: str, port: int) -> bool:
    """Whether a plain TCP connection to the port is accepted."""
    try:
        socket.create_connection((f"{address}%{iface}", port), timeout=5).close()
        return True
    except ConnectionRefusedError:
        return False


def main() -> None:
    """Run the probe and print the JSON result."""
    iface, wanted = sys.argv[1], sys.argv[2]
    result = sdp(iface, 0x00 if wanted == "tls" else 0x10, "--malformed" in sys.argv)
    result["connection"] = connect(iface, result["address"], result["port"], result["security"] == 0x00)
    result["tcp_61341_open"] = plain_tcp_open(iface, result["address"], 61341)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
