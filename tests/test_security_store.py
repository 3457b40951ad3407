"""
The Plug & Charge side of :class:`evsev2g.security.files.FileSecurity`:
contract-chain verification, OCSP request data, store updates, and the TLS
server reloading its chain while a session runs (real handshakes on ::1).
"""

import datetime
import shutil
import socket

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from zope.interface.verify import verifyObject

from evsev2g.interfaces import ISecurity
from evsev2g.pki import create_test_pki, issue_leaf, reissue_leaf
from evsev2g.security import layout
from evsev2g.security.files import FileSecurity
from evsev2g.security.reload import ReloadingTLSCreator
from evsev2g.testing import FakeSecurity, RecordingSessionFactory
from evsev2g.v2gtp import build_frame

from tests.listeners import EXI, echo, start_listener
from tests.netclient import TIMEOUT, tls12_client_context


def pem(*certificates) -> str:
    """PEM text of certificates in order."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


@pytest.fixture
def own_pki(tmp_path):
    """A PKI of this test's own, which it may change."""
    return create_test_pki(tmp_path / "certs")


def contract_pem(pki, leaf=None) -> str:
    """The contract chain (leaf, MO Sub-CA 2, MO Sub-CA 1) as PEM."""
    leaf = leaf or pki.issued[layout.CONTRACT_LEAF].certificate
    return pem(leaf, pki.issued[layout.MO_SUB_CA2].certificate, pki.issued[layout.MO_SUB_CA1].certificate)


def test_fakes_and_files_provide_the_interface(test_pki):
    """FileSecurity and the shipped FakeSecurity both provide the extended ISecurity."""
    verifyObject(ISecurity, FileSecurity(test_pki.directory))
    verifyObject(ISecurity, FakeSecurity())


def test_verify_certificate_results(test_pki):
    """verify_certificate answers EVerest's CertificateValidationResult for good, foreign-root, expired, too long and garbage chains."""
    security = FileSecurity(test_pki.directory)
    good = contract_pem(test_pki)
    assert security.verify_certificate(good, ["MO"]) == "Valid"
    assert security.verify_certificate(good, ["MO", "V2G"]) == "Valid"
    assert security.verify_certificate(good, ["V2G"]) == "IssuerNotFound"
    expired = issue_leaf(test_pki, layout.CONTRACT_LEAF, now=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), days=30)
    assert security.verify_certificate(contract_pem(test_pki, expired.certificate), ["MO"]) == "Expired"
    too_long = good + pem(test_pki.issued[layout.CPO_SUB_CA1].certificate)
    assert security.verify_certificate(too_long, ["MO"]) == "InvalidChain"
    assert security.verify_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ["MO"]) == "InvalidChain"


def test_mo_ocsp_request_data_is_rfc6960_cert_ids(test_pki):
    """One entry per certificate below the root; hashes are SHA-256 of the issuer's DER name and key bits, serials bare hex."""
    security = FileSecurity(test_pki.directory)
    data = security.mo_ocsp_request_data(contract_pem(test_pki))["ocsp_request_data_list"]
    chain = [test_pki.issued[p].certificate for p in (layout.CONTRACT_LEAF, layout.MO_SUB_CA2, layout.MO_SUB_CA1, layout.MO_ROOT)]
    assert len(data) == 3
    for entry, certificate, issuer in zip(data, chain, chain[1:]):
        hashed = entry["certificate_hash_data"]
        digest = hashes.Hash(hashes.SHA256())
        digest.update(issuer.subject.public_bytes())
        assert hashed["hash_algorithm"] == "SHA256"
        assert hashed["issuer_name_hash"] == digest.finalize().hex()
        assert hashed["serial_number"] == format(certificate.serial_number, "x")
        assert "responder_url" not in entry  # the test PKI has no AIA
    assert len(security.v2g_ocsp_request_data()["ocsp_request_data_list"]) == 3


def test_store_updates_name_what_changed(own_pki):
    """check_for_changes reports a renewed SECC leaf as an Installed V2G leaf, a removed MO root as a Deleted MO CA, nothing when nothing changed."""
    security = FileSecurity(own_pki.directory)
    seen = []
    unsubscribe = security.subscribe_store_updates(seen.append)
    assert security.check_for_changes() == []
    reissue_leaf(own_pki, layout.SECC_LEAF)
    assert security.check_for_changes() == [{"operation": "Installed", "leaf_certificate_type": "V2G"}]
    for relative in (layout.MO_ROOT, layout.MO_SUB_CA1, layout.MO_SUB_CA2):
        own_pki.path(relative).unlink()
    security.check_for_changes()
    assert seen == [
        {"operation": "Installed", "leaf_certificate_type": "V2G"},
        {"operation": "Deleted", "ca_certificate_type": "MO"},
    ]
    unsubscribe()
    reissue_leaf(own_pki, layout.SECC_LEAF)
    assert len(security.check_for_changes()) == 1 and len(seen) == 2


def test_watch_runs_on_the_injected_clock(own_pki):
    """watch() looks at the files every interval of the given clock, and not before."""
    security = FileSecurity(own_pki.directory)
    seen = []
    security.subscribe_store_updates(seen.append)
    clock = Clock()
    loop = security.watch(clock, 10.0)
    reissue_leaf(own_pki, layout.SECC_LEAF)
    clock.advance(9.9)
    assert seen == []
    clock.advance(0.2)
    assert seen == [{"operation": "Installed", "leaf_certificate_type": "V2G"}]
    loop.stop()


def test_a_bad_renewal_keeps_the_old_chain(own_pki, log_events):
    """A chain that does not match its key after an update is refused with a log line; the old chain stays in service."""
    security = FileSecurity(own_pki.directory)
    creator = ReloadingTLSCreator(security)
    old_serial = creator.credentials.leaf.serial_number
    shutil.copy(own_pki.path(layout.CPS_LEAF_KEY), own_pki.path(layout.SECC_LEAF_KEY))
    security.check_for_changes()
    assert creator.credentials.leaf.serial_number == old_serial and creator.reloads == 0
    assert "TLS certificates changed but are unusable, still serving the old chain" in log_events.text()


def _open_and_echo(port, cafile):
    """EV side: handshake, one frame echoed; returns (socket, server leaf serial)."""
    raw = socket.create_connection(("::1", port), timeout=TIMEOUT)
    sock = tls12_client_context(cafile=cafile).wrap_socket(raw)
    serial = x509.load_der_x509_certificate(sock.getpeercert(binary_form=True)).serial_number
    _echo_once(sock, b"\x80\x00\x01")
    return sock, serial


def _echo_once(sock, payload):
    """Send one V2GTP frame and read its echo."""
    frame = build_frame(EXI, payload)
    sock.sendall(frame)
    received = b""
    while len(received) < len(frame):
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed")
        received += data
    assert received == frame
    return received


@pytest_twisted.ensureDeferred
async def test_reload_while_a_session_runs(reactor, loopback, own_pki, log_events):
    """After the SECC leaf is renewed, new connections get the new leaf while a TLS session opened before keeps talking on the old one."""
    security = FileSecurity(own_pki.directory)
    creator = ReloadingTLSCreator(security)
    sessions = RecordingSessionFactory(echo)
    service = start_listener(reactor, loopback, sessions, creator)
    cafile = own_pki.path(layout.V2G_ROOT)
    try:
        first, old_serial = await deferToThread(_open_and_echo, service.port_number, cafile)
        renewed = reissue_leaf(own_pki, layout.SECC_LEAF)
        assert security.check_for_changes() == [{"operation": "Installed", "leaf_certificate_type": "V2G"}]
        assert creator.reloads == 1
        second, new_serial = await deferToThread(_open_and_echo, service.port_number, cafile)
        assert new_serial == renewed.certificate.serial_number != old_serial
        await deferToThread(_echo_once, first, b"\x80\x00\x02")  # the running session is untouched
        first.close()
        second.close()
    finally:
        await service.stopService()
    assert "TLS server chain reloaded" in log_events.text()
    assert len(sessions.sessions) == 2
