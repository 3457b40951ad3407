"""
Contract chains (:mod:`evsev2g.security.contract`): every way a chain can
be wrong gives its own FAILED code and a reason naming the certificate.
"""

import datetime

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from evsev2g.pki import issue_leaf
from evsev2g.pki.profiles import issue, leaf
from evsev2g.responses import (
    CertChainError, CertificateExpired, ISO15118_2, NoTrustedRoot, response_code,
)
from evsev2g.security import contract, layout

from tests.security.conftest import anchors_of, chain_of

UTC = datetime.timezone.utc


def der(certificate):
    """DER bytes of a certificate."""
    return certificate.public_bytes(serialization.Encoding.DER)


def code(error):
    """The ISO-2 response code of an error."""
    return response_code(error, ISO15118_2)


def test_a_good_chain_verifies_to_the_mo_root(test_pki, now):
    """The test PKI's contract chain parses from DER, carries its eMAID, and leads to the MO root."""
    chain = contract.parse_chain(der(test_pki.issued[layout.CONTRACT_LEAF].certificate),
                                 [der(c) for c in chain_of(test_pki).sub_cas])
    assert chain.emaid == "DEEV2C000000001"
    verified = contract.verify_chain(chain, anchors_of(test_pki), now)
    assert verified.anchor == test_pki.issued[layout.MO_ROOT].certificate
    assert verified.expires_soon is False
    contract.check_emaid(chain, "de-ev2-c000000001")  # dashes and case do not matter


@pytest.mark.parametrize("garbage", [b"", b"\x30\x82\x01\x00garbage", b"\x30\x03\x02\x01\x01", bytes(800)])
def test_garbage_der_is_a_chain_error(test_pki, garbage):
    """Bytes that are not DER X.509, as leaf or as Sub-CA, give FAILED_CertChainError, never another exception."""
    with pytest.raises(CertChainError, match="contract leaf: not a DER X.509 certificate") as caught:
        contract.parse_chain(garbage)
    assert code(caught.value) == "FAILED_CertChainError"
    with pytest.raises(CertChainError, match="Sub-CA 1: not a DER"):
        contract.parse_chain(der(test_pki.issued[layout.CONTRACT_LEAF].certificate), [garbage])


def test_too_many_sub_cas(test_pki):
    """A chain with three Sub-CAs is refused before any DER is parsed."""
    sub = der(test_pki.issued[layout.MO_SUB_CA2].certificate)
    with pytest.raises(CertChainError, match="3 Sub-CAs; at most 2"):
        contract.parse_chain(der(test_pki.issued[layout.CONTRACT_LEAF].certificate), [sub, sub, sub])


def test_an_appended_root_is_dropped(test_pki, now):
    """A chain sent with the MO root after the two Sub-CAs parses as leaf and two Sub-CAs and verifies against the installed root."""
    subs = [der(c) for c in chain_of(test_pki).sub_cas] + [der(test_pki.issued[layout.MO_ROOT].certificate)]
    chain = contract.parse_chain(der(test_pki.issued[layout.CONTRACT_LEAF].certificate), subs)
    assert len(chain.sub_cas) == 2
    contract.verify_chain(chain, anchors_of(test_pki), now)


def test_wrong_emaid(test_pki):
    """An eMAID that is not the leaf's CN is FAILED_CertChainError."""
    with pytest.raises(CertChainError, match="is not the contract leaf's"):
        contract.check_emaid(chain_of(test_pki), "DEEV2C000000999")


@pytest.mark.parametrize("start, days, words", [
    (datetime.datetime(2020, 1, 1, tzinfo=UTC), 30, "expired on"),
    (datetime.datetime.now(UTC) + datetime.timedelta(days=30), 30, "is not valid before"),
])
def test_expired_and_not_yet_valid(test_pki, now, start, days, words):
    """A contract leaf outside its validity period is FAILED_CertificateExpired with the date in the reason."""
    made = issue_leaf(test_pki, layout.CONTRACT_LEAF, now=start, days=days)
    with pytest.raises(CertificateExpired, match=words) as caught:
        contract.verify_chain(chain_of(test_pki, made.certificate), anchors_of(test_pki), now)
    assert code(caught.value) == "FAILED_CertificateExpired"


def test_expires_soon(test_pki, now):
    """A leaf that expires within 21 days verifies, flagged expires_soon (OK_CertificateExpiresSoon)."""
    made = issue_leaf(test_pki, layout.CONTRACT_LEAF, days=10)
    assert contract.verify_chain(chain_of(test_pki, made.certificate), anchors_of(test_pki), now).expires_soon


def test_unknown_root(test_pki, now):
    """Without the MO root installed the chain has no trust anchor: NoTrustedRoot, answered FAILED_CertChainError."""
    with pytest.raises(NoTrustedRoot, match="no installed MO or V2G root") as caught:
        contract.verify_chain(chain_of(test_pki), anchors_of(test_pki, layout.V2G_ROOT), now)
    assert code(caught.value) == "FAILED_CertChainError"


def test_a_root_of_the_same_name_but_another_key(test_pki, now):
    """A root that only shares the MO root's name does not anchor the chain."""
    real = test_pki.issued[layout.MO_ROOT].certificate
    key = ec.generate_private_key(ec.SECP256R1())
    fake = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    with pytest.raises(NoTrustedRoot, match="no installed root of that name signed it"):
        contract.verify_chain(chain_of(test_pki), [fake], now)


def test_broken_signature_in_the_chain(test_pki, now):
    """A leaf presented under the wrong Sub-CA 2 (the CPO's) is FAILED_CertChainError naming both."""
    chain = chain_of(test_pki, None, test_pki.issued[layout.CPO_SUB_CA2].certificate, test_pki.issued[layout.MO_SUB_CA1].certificate)
    with pytest.raises(CertChainError, match="is not signed by"):
        contract.verify_chain(chain, anchors_of(test_pki), now)


def test_leaf_without_digital_signature(test_pki, now):
    """A contract leaf whose keyUsage does not allow signing is refused."""
    sub2 = test_pki.issued[layout.MO_SUB_CA2]
    key = ec.generate_private_key(ec.SECP256R1())
    made = issue(leaf("DEEV2C000000001", "MO", 30, ("key_agreement",)), key.public_key(), sub2.certificate, sub2.key, now)
    with pytest.raises(CertChainError, match="may not sign"):
        contract.verify_chain(chain_of(test_pki, made), anchors_of(test_pki), now)


def test_a_leaf_used_as_sub_ca(test_pki, now):
    """A non-CA certificate in the Sub-CA position is FAILED_CertChainError."""
    chain = chain_of(test_pki, None, test_pki.issued[layout.OEM_LEAF].certificate)
    with pytest.raises(CertChainError, match="is not a CA certificate"):
        contract.verify_chain(chain, anchors_of(test_pki), now)


def test_rsa_key_is_refused(test_pki):
    """A certificate whose key is not P-256 is refused at parsing."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sub2 = test_pki.issued[layout.MO_SUB_CA2]
    made = issue(leaf("X", "MO", 30, ("digital_signature",)), key.public_key(), sub2.certificate, sub2.key,
                 datetime.datetime.now(UTC))
    with pytest.raises(CertChainError, match="not ECC secp256r1"):
        contract.parse_chain(der(made))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=800), st.lists(st.binary(max_size=800), max_size=4), st.integers(0, 799), st.integers(0, 255))
def test_any_bytes_are_a_chain_error_or_a_chain(test_pki, leaf, subs, offset, flip):
    """
    Whatever bytes arrive as contract leaf and Sub-CAs (random, or the real
    leaf with one byte changed), parsing gives a chain or FAILED_CertChainError,
    never another exception; a changed real leaf never verifies.
    """
    real = bytearray(der(test_pki.issued[layout.CONTRACT_LEAF].certificate))
    real[offset % len(real)] ^= flip or 1
    for candidate in (leaf, bytes(real)):
        try:
            chain = contract.parse_chain(candidate, subs if candidate is leaf else [der(c) for c in chain_of(test_pki).sub_cas])
        except CertChainError:
            continue
        if candidate is not leaf:
            with pytest.raises((CertChainError, CertificateExpired, NoTrustedRoot)):
                contract.verify_chain(chain, anchors_of(test_pki), datetime.datetime.now(UTC))
