"""
Plug & Charge with an independent EV: Josev's EVCC (``iso15118`` 0.31.2,
its own EXI codec, its own XML-signature code, its own TLS client) with its
**own PKI** (made by its ``create_certs.sh``), and our SECC given the same
PKI laid out as EVerest's EvseSecurity keeps a certificate directory
(:mod:`tests.interop.josev_pki`).  Namespaces and the driver are those of
``test_josev_din.py``.

What it proves: our TLS server with Josev's SECC chain and encrypted key
(password file); Josev choosing Contract over TLS; PaymentDetails with
Josev's contract chain verified by our SECC against Josev's MO root;
Josev's signed AuthorizationReq (its SignedInfo encoding, its r‖s)
verified by our fragment encoder and ECDSA check; require_auth_pnc.
"""

from __future__ import annotations

import pytest

from tests.interop.josev_pki import lay_out, make_josev_pki
from tests.interop.test_josev_din import Josev, LoggedSECC, folded, josev_python, secc_problems  # noqa: F401
from tests.test_netns import NetnsPair, prepared

pytestmark = [pytest.mark.netns, pytest.mark.interop]

#: Requests of a whole ISO-2 PnC DC session with a contract, repeats folded.
WHOLE_PNC_DC = [
    "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq",
    "PaymentDetailsReq", "AuthorizationReq", "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq",
    "PowerDeliveryReq", "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq",
]


@pytest.fixture(scope="module")
def pnc_pair(josev_python):
    """A fresh veth pair between two namespaces for the module, removed afterwards."""
    yield from prepared(NetnsPair("jp"))


@pytest.fixture(scope="module")
def josev_with_its_pki(josev_python, pnc_pair, test_pki, tmp_path_factory):
    """Josev's EVCC whose PKI directory holds the PKI its own script made."""
    josev = Josev(josev_python, pnc_pair, tmp_path_factory.mktemp("josev-pnc"), test_pki)
    josev.pki = make_josev_pki(josev_python, josev.workdir)
    return josev


@pytest.fixture(scope="module")
def pnc_secc(pnc_pair, josev_with_its_pki, tmp_path_factory):
    """Our SECC over TLS only, Josev's PKI in EvseSecurity's layout, contract chains verified, the PnC simulated backend."""
    pair = pnc_pair
    certs_dir = lay_out(josev_with_its_pki.pki, tmp_path_factory.mktemp("secc-certs") / "certs")
    address = pair.link_local(pair.secc_ns, pair.secc_if)
    server = LoggedSECC(
        pair, tmp_path_factory.mktemp("secc") / "secc.log", f"device={pair.secc_if}", "tls_security=force",
        f"certs_dir={certs_dir}", "verify_contract_cert_chain=true", "simulator.pnc=true",
        "simulator.auth_delay_ms=200", "simulator.cable_check_ms=200",
    )
    try:
        server.wait_for(f"on {pair.secc_if} [{address}]")
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.text()


def test_josev_plug_and_charge_with_its_own_pki(pnc_secc, josev_with_its_pki):
    """
    Josev's EVCC, ISO 15118-2 over TLS, with its contract: it picks Contract,
    our SECC verifies its contract chain and its signed AuthorizationReq,
    publishes require_auth_pnc with its eMAID, and the DC session runs to a
    clean end with every answer OK.
    """
    start = len(pnc_secc.text())
    report = josev_with_its_pki.run("--protocols", "ISO_15118_2", "--tls", "--mode", "DC_extended", "--loops", "4")
    assert report["sdp_security"] == "TLS", report["log"]
    assert report["status"] == 0 and report["successful"], report
    assert folded(report["sent"]) == WHOLE_PNC_DC, report["log"]
    assert all(code.startswith("OK") for _, code in report["response_codes"]), report["response_codes"]
    pnc_secc.wait_for("simulated EVSE: dlink_terminate", start)
    assert secc_problems(pnc_secc.text()[start:]) == []


def test_josev_certificate_installation(pnc_secc, josev_with_its_pki):
    """
    Josev's EVCC told its certificate installation is needed: its
    CertificateInstallationReq (signed with its OEM provisioning key) goes
    out as base64 EXI, our simulated backend answers with a contract under
    Josev's MO Sub-CA 2 signed with Josev's CPS key, our SECC relays it with
    that signature, and Josev accepts it (its own signature and chain
    checks, its own key decryption) and goes on to PaymentDetails.
    """
    start = len(pnc_secc.text())
    report = josev_with_its_pki.run("--protocols", "ISO_15118_2", "--tls", "--mode", "DC_extended", "--loops", "4",
                                    "--cert-install")
    assert "CertificateInstallationReq" in report["sent"], report["log"]
    codes = dict(report["response_codes"])
    assert codes.get("CertificateInstallationRes") == "OK", report["response_codes"]
    assert report["sent"][report["sent"].index("CertificateInstallationReq") + 1] == "PaymentDetailsReq", report["log"]
    assert report["status"] == 0 and report["successful"], report
    pnc_secc.wait_for("simulated EVSE: dlink_terminate", start)
    assert secc_problems(pnc_secc.text()[start:]) == []
