"""
Whole Plug & Charge sessions in this process: the EV simulator's PnC flow
against the real SECC over TLS 1.2 on ::1 (real handshakes, V2GTP, the EXI
codec, the ISO-2 state machine with its contract path, the file security
provider over the test PKI) and the simulated charger with its PnC backend
(``simulator.pnc``).  AC and DC; with a contract, with CertificateInstallation
first, with CertificateUpdate; the backend too slow; bad inputs; a
certificate renewal while a session runs.
"""

import pytest
import pytest_twisted

from evsev2g.pki import reissue_leaf
from evsev2g.security import layout
from evsev2g.sim import ev_iso2_pnc
from evsev2g.sim.ev_pnc import ev_directory
from evsev2g.sim.ev import EVSettings, run_ev
from evsev2g.sim.loopback import start_secc

from tests.sim.test_ev_iso2_secc import FAST as SIM_FAST
from tests.sim.test_ev_iso2_secc import Recorders

FAST = SIM_FAST + [
    "simulator.certificate_delay_ms=50",
    "simulator.pnc=true",
    "verify_contract_cert_chain=true",
    "tls_security=force",
    "tls_port=0",
]


@pytest.fixture
def pki(tmp_path):
    """A test PKI of the test's own (tests change it)."""
    from evsev2g.pki import create_test_pki

    return create_test_pki(tmp_path / "certs")


@pytest.fixture
def make_secc(reactor, pki):
    """``make_secc(mode, *settings)``: a PnC SECC over TLS on ::1; stopped afterwards."""
    running = []

    def make(mode="dc", *settings):
        secc = start_secc(reactor, FAST + [f"simulator.mode={mode}", f"certs_dir={pki.directory}", *settings])
        secc.recorder = Recorders(secc.sessions.backend)
        secc.mode = mode
        running.append(secc)
        return secc

    yield make
    for secc in running:
        pytest_twisted.blockon(secc.service.stopService())


def ev_certs(pki, directory, contract=True):
    """The EV's own files out of the test PKI (its contract only when ``contract``)."""
    return ev_directory(pki.directory, directory, contract)


def pnc_ev(secc, pki, certs_dir, **overrides):
    """A PnC EV for ``secc``: small battery, quick loops."""
    values = dict(
        host=secc.host, port=secc.port, protocol="iso15118-2", mode=secc.mode, tls=True, pnc=True,
        certs_dir=certs_dir, v2g_root=pki.path(layout.V2G_ROOT), capacity_wh=100, start_soc=70, target_soc=99,
        max_current=100, max_current_demands=8, poll_interval=0.01, current_demand_interval=0.02,
    )
    values.update(overrides)
    return EVSettings(**values)


def flow_of():
    """Capture the PnC flow the EV simulator makes (to read what it did)."""
    flows = []
    original = ev_iso2_pnc.PnCFlow.__init__

    def init(self, ev):
        original(self, ev)
        flows.append(self)

    return flows, init


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_whole_pnc_session_with_installation(reactor, make_secc, pki, tmp_path, mode, monkeypatch):
    """
    An EV without a contract: TLS, Contract payment, the certificate service,
    CertificateInstallation answered by the simulated backend (relayed with
    its signature, checked by the EV against its V2G root, key decrypted),
    PaymentDetails with the new chain verified by the SECC, a signed
    AuthorizationReq, require_auth_pnc, then the whole AC or DC session.
    """
    flows, init = flow_of()
    monkeypatch.setattr(ev_iso2_pnc.PnCFlow, "__init__", init)
    secc = make_secc(mode)
    result = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev", contract=False)))
    assert result.code == 0, result.reason
    assert result.tls == [("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")]
    assert flows[0].certificate_actions == ["Installation"]
    assert flows[0].payment_details_code == "OK"
    assert flows[0].tariffs_verified == 1  # the schedule's SalesTariff, signed with MO Sub-CA 2, checked by the EV
    assert ["certificate installation", "payment details", "authorization"] == [
        s for s in result.states if s in ("certificate installation", "payment details", "authorization")]
    await secc.sessions.when_finished(1)
    names = secc.recorder.sessions[0].names()
    assert "iso15118_certificate_request" in names and "require_auth_pnc" in names
    assert "require_auth_eim" not in names and "hlc_session_failed" not in names
    (payload,) = secc.recorder.sessions[0].payloads("require_auth_pnc")
    assert payload["id_token"]["type"] == "eMAID" and payload["authorization_type"] == "PlugAndCharge"
    assert len(payload["iso15118CertificateHashData"]) == 3


@pytest_twisted.ensureDeferred
async def test_pnc_with_a_contract_and_signed_receipts(reactor, make_secc, pki, tmp_path, monkeypatch):
    """An EV with its contract skips installation; with receipts required every MeteringReceipt is signed and accepted."""
    flows, init = flow_of()
    monkeypatch.setattr(ev_iso2_pnc.PnCFlow, "__init__", init)
    secc = make_secc("ac", "simulator.receipt_required=true")
    result = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev")))
    assert result.code == 0, result.reason
    assert flows[0].certificate_actions == [] and result.receipts > 0
    assert "certificate installation" not in result.states


@pytest_twisted.ensureDeferred
async def test_certificate_update_when_the_contract_expires_soon(reactor, make_secc, pki, tmp_path, monkeypatch):
    """A contract expiring within 21 days makes the EV run CertificateUpdate, signed with the old key; it then charges with the new contract."""
    flows, init = flow_of()
    monkeypatch.setattr(ev_iso2_pnc.PnCFlow, "__init__", init)
    reissue_leaf(pki, layout.CONTRACT_LEAF, days=10)
    secc = make_secc("dc")
    result = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev")))
    assert result.code == 0, result.reason
    assert flows[0].certificate_actions == ["Update"]
    assert flows[0].contract.chain.leaf.not_valid_after_utc > pki.issued[layout.CONTRACT_LEAF].certificate.not_valid_after_utc


@pytest_twisted.ensureDeferred
async def test_backend_too_slow_then_the_next_session_works(reactor, make_secc, pki, tmp_path):
    """
    A backend slower than the 4 s wait: CertificateInstallationRes FAILED,
    the EV stops; the SECC logs why, ends the session, and the next EV (with
    a contract) charges on the same SECC.
    """
    secc = make_secc("dc", "simulator.certificate_delay_ms=4500", "simulator.auth_delay_ms=0")
    slow = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev1", contract=False)))
    assert slow.code == 2 and "CertificateInstallationRes: FAILED" in slow.reason
    result = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev2")))
    assert result.code == 0, result.reason


@pytest_twisted.ensureDeferred
async def test_renewal_while_a_session_charges(reactor, make_secc, pki, tmp_path):
    """
    The SECC leaf is renewed on disk while a PnC session charges: the
    running session finishes on its TLS connection, and the next one is
    served with the new leaf (the certificate watcher reloads it).
    """
    secc = make_secc("dc")
    renewed = []

    def progress(report):
        if report["state"] == "charging" and not renewed:
            renewed.append(reissue_leaf(pki, layout.SECC_LEAF))
            secc.service.getServiceNamed("certificate-watch").call[0]()  # look now rather than in 10 s

    first = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev1"), max_current_demands=20), progress)
    assert first.code == 0, first.reason and renewed
    creator = secc.service.tls.tls
    assert creator.reloads == 1 and creator.credentials.leaf == renewed[0].certificate
    second = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev2")))
    assert second.code == 0, second.reason


@pytest_twisted.ensureDeferred
async def test_ev_without_its_files(reactor, make_secc, pki, tmp_path):
    """An EV simulator whose certificate directory lacks its files ends with exit 1 naming the file, no traceback; the SECC serves the next EV."""
    secc = make_secc("dc")
    broken = await run_ev(reactor, pnc_ev(secc, pki, tmp_path / "empty"))
    assert broken.code == 1 and "OEM_LEAF.pem" in broken.reason
    result = await run_ev(reactor, pnc_ev(secc, pki, ev_certs(pki, tmp_path / "ev")))
    assert result.code == 0, result.reason
