"""
``python -m evsev2g.pki``: make or check a test PKI.

``create DIR`` writes a complete ISO 15118-2 test PKI into ``DIR`` in
EVerest's certificate layout; point ``certs_dir`` at it.  ``check DIR`` says
whether the TLS server would find a usable chain and key there, and if not,
why.  Exit status 0 on success, 1 on failure, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evsev2g.errors import CertificatesUnavailable
from evsev2g.pki import DEFAULT_EMAID, DEFAULT_EVSE_ID, DEFAULT_PCID, PKIExists, create_test_pki
from evsev2g.security import layout
from evsev2g.security.credentials import subject_line
from evsev2g.security.files import FileSecurity
from evsev2g.sim.contract_provider import ContractProvider


def _parser() -> argparse.ArgumentParser:
    """The command line of ``python -m evsev2g.pki``."""
    parser = argparse.ArgumentParser(prog="python -m evsev2g.pki", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="write a complete ISO 15118-2 test PKI into DIR")
    create.add_argument("directory", metavar="DIR")
    create.add_argument("--evse-id", default=DEFAULT_EVSE_ID, help="CN of the SECC leaf (default %(default)s)")
    create.add_argument("--emaid", default=DEFAULT_EMAID, help="CN of the contract leaf (default %(default)s)")
    create.add_argument("--pcid", default=DEFAULT_PCID, help="CN of the OEM provisioning leaf (default %(default)s)")
    create.add_argument("--force", action="store_true", help="replace a PKI already in DIR")
    check = commands.add_parser("check", help="say whether DIR holds a usable TLS server chain and key")
    check.add_argument("directory", metavar="DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    :param argv: the arguments after the program name (default: sys.argv).
    :returns: the exit status.
    """
    arguments = _parser().parse_args(argv)
    if arguments.command == "create":
        try:
            made = create_test_pki(
                arguments.directory,
                evse_id=arguments.evse_id,
                emaid=arguments.emaid,
                pcid=arguments.pcid,
                replace=arguments.force,
            )
        except (PKIExists, OSError) as error:
            print(f"evsev2g.pki: {error}", file=sys.stderr)
            return 1
        print(f"test PKI written to {made.directory}")
        print(f"  TLS server chain: {made.path(layout.CPO_CERT_CHAIN)}")
        print(f"  TLS server key:   {made.path(layout.SECC_LEAF_KEY)} (password in {layout.SECC_LEAF_PASSWORD.name})")
        print(f"  V2G root:         {made.path(layout.V2G_ROOT)} (give this to the EV as trust anchor)")
        print(f"  contract leaf:    {made.path(layout.CONTRACT_LEAF)} (eMAID {arguments.emaid})")
        print(f"set certs_dir: {made.directory}")
        return 0
    security = FileSecurity(arguments.directory)
    try:
        credentials = security.tls_server_credentials()
    except CertificatesUnavailable as error:
        print(f"not usable: {error}", file=sys.stderr)
        return 1
    print(f"usable: {subject_line(credentials.leaf)}, valid until {credentials.leaf.not_valid_after_utc:%Y-%m-%d}")
    for certificate in credentials.chain[1:] + ((credentials.root,) if credentials.root else ()):
        print(f"  issued by {subject_line(certificate)}")
    _plug_and_charge(security)
    return 0


def _plug_and_charge(security: FileSecurity) -> None:
    """Say what Plug & Charge would find: the MO root, and the simulated backend's keys."""
    try:
        mo = security.verify_file("MO")
    except CertificatesUnavailable:
        print("Plug & Charge: no MO root; with verify_contract_cert_chain only contracts under the V2G root verify")
    else:
        print(f"Plug & Charge: MO root {mo}")
    try:
        ContractProvider(security.certs_dir, None, DEFAULT_EMAID)
    except CertificatesUnavailable as error:
        print(f"  simulator.pnc: no certificate service ({error})")
    else:
        print("  simulator.pnc: certificate installation and update can be answered (CPS chain and MO Sub-CA 2 key present)")


if __name__ == "__main__":
    sys.exit(main())
