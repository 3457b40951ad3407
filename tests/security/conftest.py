"""Fixtures of the Plug & Charge security tests."""

import datetime

import pytest

from evsev2g.exi import load_codec
from evsev2g.security import contract, layout


@pytest.fixture(scope="session")
def iso2():
    """The ISO 15118-2 codec."""
    return load_codec("iso15118-2")


@pytest.fixture
def now():
    """The current time, timezone-aware."""
    return datetime.datetime.now(datetime.timezone.utc)


def chain_of(pki, leaf=None, *subs):
    """A ContractChain of the test PKI's contract (or ``leaf``) under MO Sub-CA 2 and 1, or under ``subs``."""
    leaf = leaf or pki.issued[layout.CONTRACT_LEAF].certificate
    subs = subs or (pki.issued[layout.MO_SUB_CA2].certificate, pki.issued[layout.MO_SUB_CA1].certificate)
    return contract.ContractChain(leaf, tuple(subs))


def anchors_of(pki, *roots):
    """The installed roots (default MO and V2G) of the test PKI."""
    return [pki.issued[r].certificate for r in (roots or (layout.MO_ROOT, layout.V2G_ROOT))]
