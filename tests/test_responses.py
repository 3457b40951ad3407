"""Tests for :mod:`evsev2g.responses`: the one table of response codes."""

import pytest

from evsev2g import responses as r


def test_every_error_has_a_rule():
    """Every ProtocolError subclass has a row in the table."""
    for name in r.__all__:
        value = getattr(r, name)
        if isinstance(value, type) and issubclass(value, r.ProtocolError) and value is not r.ProtocolError:
            assert value in r.RULES, name


def test_codes_differ_by_protocol():
    """DIN and ISO 15118-2 name some codes differently."""
    assert r.response_code(r.WrongEnergyTransfer("x"), r.DIN70121) == "FAILED_WrongEnergyTransferType"
    assert r.response_code(r.WrongEnergyTransfer, r.ISO15118_2) == "FAILED_WrongEnergyTransferMode"
    assert r.response_code(r.NoChargeServiceSelected, r.DIN70121) == "FAILED_ServiceSelectionInvalid"
    with pytest.raises(KeyError):
        r.response_code(r.ContactorError, r.DIN70121)


def test_din_codes_exist_in_the_din_schema(shared_dir):
    """Every DIN code in the table is an enumeration value of DIN's responseCodeType."""
    text = (shared_dir / "xsd" / "din70121" / "V2G_CI_MsgDataTypes.xsd").read_text()
    for rule in r.RULES.values():
        code = rule.codes.get(r.DIN70121)
        if code is not None:
            assert f'value="{code}"' in text, code


def test_termination_policy():
    """SequenceError and UnknownSession always close; others follow terminate_connection_on_failed_response."""
    assert r.closes_connection(r.SequenceError("x"), False)
    assert r.closes_connection(r.UnknownSession, False)
    assert not r.closes_connection(r.PaymentSelectionInvalid, False)
    assert r.closes_connection(r.PaymentSelectionInvalid, True)
