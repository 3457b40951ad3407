"""
Plug & Charge figures of the SECC (prints them; asserts nothing).

    python bench/pnc_bench.py [--runs N]

Over a fresh test PKI in a temporary directory, per call, median and 95th
percentile of ``--runs`` runs:

* A  AuthorizationRes latency with the signature check: decode the signed
  AuthorizationReq V2G message (EXI), check the GenChallenge, verify the
  XML signature (digest of the EXI fragment, SignedInfo fragment, ECDSA
  P-256) and publish ``require_auth_pnc``; then build and encode the
  AuthorizationRes;
* B  the signature verification alone (:func:`evsev2g.security.xmldsig.verify`);
* C  PaymentDetailsRes latency with local chain verification
  (``verify_contract_cert_chain: true``): decode, parse the chain, verify it
  against the installed roots, OCSP request data, GenChallenge, encode;
* D  the simulated backend's CertificateInstallationRes (issue a contract,
  encrypt its key, sign four elements);
* E  whole PnC sessions in this process over TLS on ::1 (``--sessions``):
  the signed AuthorizationReq's round trip as the EV simulator sees it
  (TLS, V2GTP, EXI both ways, the signature check, require_auth_pnc).

Targets: A well inside V2G_SECC_Msg_Performance_Time of Authorization
(1.5 s) — aim ≤ 10 ms on 2 cores; C inside PaymentDetails' 4.5 s — aim ≤ 20 ms.
"""

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet.task import Clock  # noqa: E402

from evsev2g.charger import Charger  # noqa: E402
from evsev2g.exi import Message, load_codec  # noqa: E402
from evsev2g.pki import create_test_pki  # noqa: E402
from evsev2g.protocols.iso15118_2.pnc_session import PlugAndCharge  # noqa: E402
from evsev2g.security import xmldsig  # noqa: E402
from evsev2g.security.files import FileSecurity  # noqa: E402
from evsev2g.sim import ev_pnc  # noqa: E402
from evsev2g.sim.contract_provider import ISO2_SCHEMA, ContractProvider  # noqa: E402

SESSION = b"\x42" * 8


def message(name, body, signature=None) -> Message:
    """A V2G message around ``body``."""
    return Message("V2G_Message", Header=Message("Header", SessionID=SESSION, Signature=signature),
                   Body=Message("Body", **{name: body}))


def figures(samples) -> str:
    """Median and p95 in ms."""
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1e3:7.3f} ms   p95 {p95 * 1e3:7.3f} ms"


def sessions_over_tls(pki, count: int) -> list:
    """
    Run ``count`` whole PnC sessions in this process over TLS.

    :returns: the EV-observed latency of each session's first (signed) AuthorizationRes, in s.
    """
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    from evsev2g.security import layout
    from evsev2g.sim.ev import EVSettings, run_ev
    from evsev2g.sim.ev_pnc import ev_directory
    from evsev2g.sim.loopback import start_secc

    secc = start_secc(reactor, [
        "tls_security=force", "tls_port=0", f"certs_dir={pki.directory}", "simulator.pnc=true",
        "verify_contract_cert_chain=true", "simulator.auth_delay_ms=0", "simulator.cable_check_ms=0",
        "simulator.voltage_slew_rate=0", "simulator.current_slew_rate=0",
    ])
    ev_dir = ev_directory(pki.directory, pki.directory.parent / "ev")
    settings = EVSettings(host=secc.host, port=secc.port, protocol="iso15118-2", tls=True, pnc=True, certs_dir=ev_dir,
                          v2g_root=pki.path(layout.V2G_ROOT), capacity_wh=100, start_soc=70, target_soc=99,
                          max_current_demands=1, poll_interval=0.001, current_demand_interval=0.001)
    latencies = []

    async def run_all():
        try:
            for _ in range(count):
                result = await run_ev(reactor, settings)
                if result.code != 0:
                    raise SystemExit(f"PnC session failed: {result.reason}")
                latencies.append(result.latencies["AuthorizationRes"][0])
        finally:
            await secc.service.stopService()
            reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(run_all()))
    reactor.run()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=10)
    arguments = parser.parse_args()
    runs = arguments.runs
    codec = load_codec("iso15118-2")
    with tempfile.TemporaryDirectory() as directory:
        pki = create_test_pki(Path(directory) / "certs")
        security = FileSecurity(pki.directory)
        ev = ev_pnc.EVContract.from_directory(pki.directory)
        identity = ev_pnc.EVIdentity.from_directory(pki.directory)
        details = codec.encode(message("PaymentDetailsReq", Message(
            "PaymentDetailsReq", eMAID=ev.emaid, ContractSignatureCertChain=ev.cert_chain())))

        def new_session():
            clock = Clock()
            charger = Charger(clock)
            pnc = PlugAndCharge(charger, clock, codec, security, verify_chain=True, auth_timeout=55)
            return pnc

        a, b, c = [], [], []
        for _ in range(runs):
            pnc = new_session()
            start = time.perf_counter()
            request = codec.decode(details)
            outcome = []
            pnc.payment_details(request.Body.PaymentDetailsReq).addBoth(outcome.append)
            codec.encode(message("PaymentDetailsRes", outcome[0]))
            c.append(time.perf_counter() - start)

            body, signature = ev_pnc.authorization_request(codec, ev, pnc.challenge.current)
            wire = codec.encode(message("AuthorizationReq", body, signature))
            start = time.perf_counter()
            request = codec.decode(wire)
            done = pnc.authorization(request.Body.AuthorizationReq, request.Header)
            codec.encode(message("AuthorizationRes", Message(
                "AuthorizationRes", ResponseCode="OK", EVSEProcessing="Finished" if done else "Ongoing")))
            a.append(time.perf_counter() - start)

            start = time.perf_counter()
            xmldsig.verify(codec, request.Header.Signature, {"id1": request.Body.AuthorizationReq}, ev.chain.public_key, ["id1"])
            b.append(time.perf_counter() - start)

        provider = ContractProvider(pki.directory, codec, "DEEV2C000000009")
        install = {"exi_request": base64.b64encode(codec.encode(message(
            "CertificateInstallationReq", *ev_pnc.install_request(codec, identity)))).decode(),
            "iso15118_schema_version": ISO2_SCHEMA, "certificate_action": "Install"}
        d = []
        for _ in range(max(10, runs // 10)):
            start = time.perf_counter()
            assert provider.answer(install)["status"] == "Accepted"
            d.append(time.perf_counter() - start)
        e = sessions_over_tls(pki, arguments.sessions) if arguments.sessions else []

    print(f"PnC bench, {runs} runs (CPython {sys.version.split()[0]})")
    print(f"A AuthorizationReq→Res with signature check   {figures(a)}")
    print(f"B XML signature verification alone           {figures(b)}")
    print(f"C PaymentDetailsReq→Res with chain check     {figures(c)}")
    print(f"D CertificateInstallationRes (sim backend)   {figures(d)}")
    if e:
        print(f"E signed AuthorizationReq→Res seen by the EV {figures(e)}   ({len(e)} sessions over TLS)")


if __name__ == "__main__":
    main()
