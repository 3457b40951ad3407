"""Tests for :mod:`evsev2g.protocols.apphandshake`: supportedAppProtocol negotiation."""

import sys
import types

import pytest
from twisted.internet.task import Clock

from evsev2g.protocols import apphandshake
from evsev2g.protocols.apphandshake import enabled_versions, load_protocol_versions, negotiate
from evsev2g.protocols.din70121 import DIN70121Version
from evsev2g.testing import app_protocol_request, dc_charger

DIN = "urn:din:70121:2012:MsgDef"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
TESLA = "urn:tesla:din:2018:MsgDef"


class FakeISO2:
    """A stand-in ISO 15118-2 plugin (the real one is a later issue); the session tests use it too."""

    name = "ISO15118D2"
    namespace = ISO2
    version_major = 2
    version_minor = 0
    schema = "iso15118-2"
    config_key = "supported_ISO15118_2"
    allows_tls = True

    def usable_with(self, charger):
        """Always usable."""
        return True

    def new_state_machine(self, context):
        """Never called in these tests."""
        raise NotImplementedError


def test_lowest_priority_number_wins():
    """The matching entry with the lowest Priority number is chosen and its SchemaID echoed ([V2G2-169])."""
    request = app_protocol_request((ISO2, 2, 0, 10, 2), (DIN, 2, 0, 11, 1))
    outcome = negotiate(request, [DIN70121Version(), FakeISO2()])
    assert outcome.protocol.name == "DIN70121"
    assert outcome.response.ResponseCode == "OK_SuccessfulNegotiation"
    assert outcome.response.SchemaID == 11


def test_tesla_namespace_ignored():
    """Tesla's proprietary namespace at Priority 1 is ignored; DIN at Priority 2 with SchemaID 1 is chosen."""
    request = app_protocol_request((TESLA, 0, 7, 2, 1), (DIN, 2, 0, 1, 2))
    outcome = negotiate(request, [DIN70121Version()])
    assert outcome.protocol.name == "DIN70121"
    assert outcome.response.SchemaID == 1
    assert [entry["protocol_namespace"] for entry in outcome.offered] == [TESLA, DIN]


def test_minor_deviation():
    """Same major, other minor: OK_SuccessfulNegotiationWithMinorDeviation."""
    outcome = negotiate(app_protocol_request((DIN, 2, 1, 5, 1)), [DIN70121Version()])
    assert outcome.response.ResponseCode == "OK_SuccessfulNegotiationWithMinorDeviation"


def test_major_mismatch_and_nothing_known_fail():
    """Another major version, or nothing we know: Failed_NoNegotiation without SchemaID."""
    for request in (app_protocol_request((DIN, 1, 0, 5, 1)), app_protocol_request((TESLA, 0, 7, 2, 1))):
        outcome = negotiate(request, [DIN70121Version()])
        assert outcome.failed
        assert outcome.response.ResponseCode == "Failed_NoNegotiation"
        assert "SchemaID" not in outcome.response


def test_equal_priority_first_listed_wins():
    """Two matching entries of equal priority: the one the EV listed first."""
    request = app_protocol_request((ISO2, 2, 0, 3, 1), (DIN, 2, 0, 4, 1))
    assert negotiate(request, [DIN70121Version(), FakeISO2()]).response.SchemaID == 3


def test_refuse():
    """A stopping charger refuses to negotiate (EvseV2G does the same)."""
    outcome = negotiate(app_protocol_request((DIN, 2, 0, 1, 1)), [DIN70121Version()], refuse=True)
    assert outcome.failed


def test_enabled_versions_follows_config_and_charger():
    """supported_DIN70121 / supported_ISO15118_2 and update_supported_app_protocols restrict the choice."""
    charger = dc_charger(Clock())
    versions = [DIN70121Version(), FakeISO2()]
    assert [v.name for v in enabled_versions(versions, {"supported_DIN70121": True, "supported_ISO15118_2": True}, charger)] == [
        "DIN70121",
        "ISO15118D2",
    ]
    assert [v.name for v in enabled_versions(versions, {"supported_DIN70121": False}, charger)] == ["ISO15118D2"]
    charger.update_supported_app_protocols({"app_protocols": ["ISO15118D2"]})
    assert [v.name for v in enabled_versions(versions, {}, charger)] == ["ISO15118D2"]


def test_shipped_plugin_found():
    """The DIN and ISO 15118-2 plugins are found through IProtocolVersion in the evsev2g.plugins drop-in package."""
    assert sorted(v.name for v in load_protocol_versions()) == ["DIN70121", "ISO15118D2"]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A second ``evsev2g/plugins`` drop-in directory on sys.path, as another distribution would install."""
    import evsev2g.plugins

    directory = tmp_path / "evsev2g" / "plugins"
    directory.mkdir(parents=True)
    monkeypatch.setattr(evsev2g.plugins, "__path__", list(evsev2g.plugins.__path__) + [str(directory)])
    yield directory
    for name in list(sys.modules):
        if name.startswith("evsev2g.plugins.extra_"):
            del sys.modules[name]


def test_broken_plugin_is_logged_by_name_and_skipped(plugin_dir, log_events):
    """A plugin failing verifyObject is reported by name and left out; the others still load."""
    (plugin_dir / "extra_broken.py").write_text(
        "from twisted.plugin import IPlugin\n"
        "from zope.interface import implementer\n"
        "from evsev2g.interfaces import IProtocolVersion\n"
        "@implementer(IPlugin, IProtocolVersion)\n"
        "class Half:\n"
        "    name = 'HALF'\n"
        "half = Half()\n"
    )
    found = load_protocol_versions()
    assert sorted(v.name for v in found) == ["DIN70121", "ISO15118D2"]
    assert any(event.get("plugin") == "HALF" for event in log_events)


def test_plugin_in_other_directory_is_found(plugin_dir):
    """A valid plugin in another drop-in directory joins the negotiation."""
    (plugin_dir / "extra_iso.py").write_text(
        "from twisted.plugin import IPlugin\n"
        "from zope.interface import implementer\n"
        "from evsev2g.interfaces import IProtocolVersion\n"
        "@implementer(IPlugin, IProtocolVersion)\n"
        "class ISO2:\n"
        "    name = 'ISO15118D2'\n"
        "    namespace = 'urn:iso:15118:2:2013:MsgDef'\n"
        "    version_major = 2\n"
        "    version_minor = 0\n"
        "    schema = 'iso15118-2'\n"
        "    config_key = 'supported_ISO15118_2'\n"
        "    allows_tls = True\n"
        "    def usable_with(self, charger): return True\n"
        "    def new_state_machine(self, context): return None\n"
        "iso2 = ISO2()\n"
    )
    assert sorted(v.name for v in load_protocol_versions()) == ["DIN70121", "ISO15118D2"]
    assert apphandshake.FAILED == "Failed_NoNegotiation"
    assert isinstance(types.ModuleType, type)
