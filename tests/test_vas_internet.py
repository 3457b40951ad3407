"""
The Internet-access example provider (:mod:`evsev2g.vas_internet`), its
drop-in, and how value-added-service plugins are found and checked.
"""

from __future__ import annotations

import importlib
import stat
import sys
import textwrap

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from evsev2g.errors import ConfigError
from evsev2g.interfaces import IValueAddedService
from evsev2g.vas import ServiceRegistry, load_value_added_services
from evsev2g.vas_internet import InternetAccess, InternetSelection, SetupProgram


def outcome(deferred):
    """The result (or Failure) of a fired Deferred."""
    box = []
    deferred.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def sets_of(answer):
    """(set_id, protocol, port) triples of a ParameterSet list."""
    triples = []
    for each in answer:
        values = {p["name"]: next(iter(p["value"].values())) for p in each["parameters"]}
        triples.append((each["set_id"], values["Protocol"], values["Port"]))
    return triples


def test_internet_access_provides_the_interface():
    """The example and the drop-in's object pass verifyObject."""
    from evsev2g.plugins import evsev2g_vas

    assert verifyObject(IValueAddedService, InternetAccess())
    assert verifyObject(IValueAddedService, evsev2g_vas.internet_access)


def test_http_and_https_by_default_with_the_standard_set_ids():
    """By default service 3 offers set 3 (http/80) and set 4 (https/443), ISO 15118-2 Table 107, through the registry's checks."""
    registry = ServiceRegistry([InternetAccess()], clock=Clock())
    (service,) = registry.offered()
    assert (service.service_id, service.service_name, service.service_category, service.free_service) == (3, "InternetAccess", "Internet", True)
    assert sets_of(outcome(registry.parameter_sets(3))) == [(3, "http", 80), (4, "https", 443)]


def test_ftp_adds_both_ftp_sets_and_scope_and_price_are_configurable():
    """ftp brings sets 1 (port 20) and 2 (port 21); scope and FreeService are passed on."""
    provider = InternetAccess(["https", "ftp"], free_service=False, service_scope="depot")
    registry = ServiceRegistry([provider], clock=Clock())
    (service,) = registry.offered(scope="depot")
    assert service.free_service is False
    assert sets_of(outcome(registry.parameter_sets(3))) == [(1, "ftp", 20), (2, "ftp", 21), (4, "https", 443)]


def test_no_protocol_offers_nothing():
    """Without protocols the provider offers nothing: no internet access is announced that cannot be given."""
    assert InternetAccess(()).offered_services() == []


def test_other_service_id_raises():
    """Asked for a service it does not offer, the provider raises (and the registry reports it)."""
    with pytest.raises(KeyError):
        InternetAccess().get_service_parameters(4)


@pytest.mark.parametrize("arguments", [{"protocols": ["gopher"]}, {"service_scope": "x" * 65}, {"service_scope": ""}])
def test_bad_configuration_is_refused(arguments):
    """Unknown protocols and out-of-range scopes are configuration errors."""
    with pytest.raises(ConfigError):
        InternetAccess(**arguments)


def test_selection_reaches_on_selected_with_ports(log_events):
    """The EV's chosen sets become an InternetSelection (protocols, ports) for on_selected; sets not offered are logged and ignored."""
    seen = []
    provider = InternetAccess(["http", "https"], on_selected=seen.append)
    registry = ServiceRegistry([provider], clock=Clock())
    assert outcome(registry.select([{"service_id": 1}, {"service_id": 3, "parameter_set_id": 4}, {"service_id": 3, "parameter_set_id": 1}])) is None
    assert seen == [InternetSelection((4,), ("https",), (443,))]
    assert provider.selections == seen
    assert "the EV chose parameter set 1, which is not offered" in log_events.text()
    registry.select([{"service_id": 3}])
    assert len(seen) == 1, "no set named: nothing to open"


def test_from_environment():
    """The drop-in's variables: protocols, scope, price and a setup program."""
    provider = InternetAccess.from_environment(
        {
            "EVSEV2G_INTERNET_ACCESS": " HTTPS , ftp",
            "EVSEV2G_INTERNET_ACCESS_SCOPE": "fleet",
            "EVSEV2G_INTERNET_ACCESS_FREE": "false",
            "EVSEV2G_INTERNET_ACCESS_SETUP": "/bin/true --verbose",
        }
    )
    assert provider.protocols == ("ftp", "https")
    assert (provider.service_scope, provider.free_service) == ("fleet", False)
    assert isinstance(provider.on_selected, SetupProgram)
    assert provider.on_selected.command == ["/bin/true", "--verbose"]
    assert InternetAccess.from_environment({}).offered_services() == []


@pytest.mark.parametrize(
    "environ, key",
    [
        ({"EVSEV2G_INTERNET_ACCESS": "http,telnet"}, "EVSEV2G_INTERNET_ACCESS"),
        ({"EVSEV2G_INTERNET_ACCESS_FREE": "maybe"}, "EVSEV2G_INTERNET_ACCESS_FREE"),
        ({"EVSEV2G_INTERNET_ACCESS": "http", "EVSEV2G_INTERNET_ACCESS_SCOPE": "s" * 65}, "EVSEV2G_INTERNET_ACCESS_SCOPE"),
        ({"EVSEV2G_INTERNET_ACCESS": "http", "EVSEV2G_INTERNET_ACCESS_SETUP": "/nonexistent/ev-net start"}, "EVSEV2G_INTERNET_ACCESS_SETUP"),
    ],
)
def test_from_environment_names_the_wrong_variable(environ, key):
    """A wrong variable (a setup program that does not exist included) is a ConfigError naming it."""
    with pytest.raises(ConfigError) as raised:
        InternetAccess.from_environment(environ)
    assert raised.value.key == key


@pytest_twisted.ensureDeferred
async def test_setup_program_runs_with_the_chosen_ports(tmp_path, reactor):
    """SetupProgram runs the configured program with ``start`` and the chosen ports; a non-zero exit is a failure the registry logs by name."""
    record = tmp_path / "called"
    script = tmp_path / "ev-net"
    script.write_text(f'#!/bin/sh\necho "$@" > {record}\n[ "$1" != fail ]\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    provider = InternetAccess(["http", "https"], on_selected=SetupProgram([str(script), "--lan", "eth1"], reactor))
    await provider.selected_services([{"service_id": 3, "parameter_set_id": 4}, {"service_id": 3, "parameter_set_id": 3}])
    assert record.read_text().split() == ["--lan", "eth1", "start", "80", "443"]
    failing = SetupProgram([str(script), "fail"], reactor)
    with pytest.raises(RuntimeError, match="exited with 1"):
        await failing(InternetSelection((3,), ("http",), (80,)))


# -- discovery of drop-ins -------------------------------------------------------


GOOD = """
    from twisted.plugin import IPlugin
    from zope.interface import implementer
    from evsev2g.interfaces import IValueAddedService

    @implementer(IPlugin, IValueAddedService)
    class Parking:
        name = "parking-guide"
        def offered_services(self):
            return [{"service_id": 60100, "service_name": "ParkingGuide"}]
        def get_service_parameters(self, service_id):
            return []
        def selected_services(self, selected_services):
            return None

    parking = Parking()
"""

BROKEN = """
    from twisted.plugin import IPlugin
    from zope.interface import implementer
    from evsev2g.interfaces import IValueAddedService

    @implementer(IPlugin, IValueAddedService)
    class Half:
        name = "half-done"
        def offered_services(self):
            return []

    half = Half()
"""

UNIMPORTABLE = """
    raise ImportError("this plugin needs a module that is not installed")
"""


@pytest.fixture
def dropin_package(tmp_path, request):
    """A throw-away plugin package on sys.path, unique per test."""
    name = f"vas_dropins_{request.node.name.replace('[', '_').replace(']', '_')}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, package
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def test_dropins_are_found_and_broken_ones_left_out_by_name(dropin_package, log_events):
    """A good drop-in is loaded; one failing verifyObject is reported by its name and left out; one that cannot be imported does not stop the others."""
    name, package = dropin_package
    (package / "good.py").write_text(textwrap.dedent(GOOD))
    (package / "broken.py").write_text(textwrap.dedent(BROKEN))
    (package / "unimportable.py").write_text(textwrap.dedent(UNIMPORTABLE))
    providers = load_value_added_services(importlib.import_module(name))
    assert [provider.name for provider in providers] == ["parking-guide"]
    text = log_events.text()
    assert "value-added service plugin half-done is broken and skipped" in text
    assert "unimportable.py" in text and "needs a module that is not installed" in text
    assert f"value-added service plugin module {name}.unimportable" in text
    assert "Unhandled Error" not in text
    registry = ServiceRegistry(providers, clock=Clock())
    assert [s.service_id for s in registry.offered()] == [60100]


@pytest.fixture
def shipped_dropin(monkeypatch):
    """Re-imports evsev2g.plugins.evsev2g_vas under the test's environment, and once more without it afterwards."""
    from evsev2g.plugins import evsev2g_vas

    for key in ("EVSEV2G_INTERNET_ACCESS", "EVSEV2G_INTERNET_ACCESS_SCOPE", "EVSEV2G_INTERNET_ACCESS_FREE", "EVSEV2G_INTERNET_ACCESS_SETUP"):
        monkeypatch.delenv(key, raising=False)

    def load(**environ):
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        importlib.reload(evsev2g_vas)
        return ServiceRegistry(load_value_added_services(), clock=Clock())

    yield load
    monkeypatch.undo()
    importlib.reload(evsev2g_vas)


def test_shipped_dropin_offers_internet_access_only_when_configured(shipped_dropin, log_events):
    """evsev2g.plugins holds the internet-access provider: unconfigured it offers nothing, configured it offers service 3, misconfigured it says why and offers nothing."""
    registry = shipped_dropin()
    assert "internet-access" in [provider.name for provider in registry.providers]
    assert registry.offered() == []
    registry = shipped_dropin(EVSEV2G_INTERNET_ACCESS="https")
    assert [s.service_id for s in registry.offered()] == [3]
    assert sets_of(outcome(registry.parameter_sets(3))) == [(4, "https", 443)]
    registry = shipped_dropin(EVSEV2G_INTERNET_ACCESS="https,smtp")
    assert registry.offered() == []
    assert "internet access is not offered: EVSEV2G_INTERNET_ACCESS: 'smtp' unknown" in log_events.text()
