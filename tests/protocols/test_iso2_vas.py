"""
Value-added services end to end through the ISO 15118-2 state machine,
with the real registry (:mod:`evsev2g.vas`), the real Internet-access
provider and misbehaving providers beside it, over TLS (ISO 15118-2 offers
value-added services only there): ServiceDiscovery lists what
works, ServiceDetail hands over the provider's parameter sets,
PaymentServiceSelection tells the provider, and a broken provider is
reported by name and left out while the session goes on.  Every response
is encoded with the real ISO-2 codec (the encoder checks the schema).
"""

from __future__ import annotations

import importlib

import pytest
from twisted.internet.task import Clock

from evsev2g.exi.message import Message
from evsev2g.testing import FakeSessionLink, FakeValueAddedService, app_protocol_request
from evsev2g.testing_iso2 import ISO2_DC_SESSION, iso2_request
from evsev2g.vas import DETAIL_TIMEOUT, ServiceRegistry
from evsev2g.vas_internet import InternetAccess, InternetSelection
from tests.protocols.iso15118_2.harness import START, Harness
from tests.protocols.test_apphandshake import ISO2
from tests.test_vas import Raising


def selection(*services):
    """PaymentServiceSelectionReq fields: ExternalPayment and ``services`` as ServiceID or (ServiceID, ParameterSetID)."""
    entries = [
        Message("SelectedService", ServiceID=each[0], ParameterSetID=each[1]) if isinstance(each, tuple) else Message("SelectedService", ServiceID=each)
        for each in services
    ]
    return {"SelectedPaymentOption": "ExternalPayment", "SelectedServiceList": Message("SelectedServiceList", SelectedService=entries)}


def answer_of(deferred):
    """The (code, body, reply) a fired Deferred from Harness.send_deferred gives."""
    box = []
    deferred.addBoth(box.append)
    assert box, "the machine has not answered"
    return box[0]


def harness(providers, secure=True):
    """A DC harness whose context carries a real ServiceRegistry of ``providers`` on the harness's clock."""
    clock = Clock()
    clock.advance(START)
    registry = ServiceRegistry(providers, clock=clock)
    return Harness(clock=clock, services=registry, secure=secure), registry


def sets_of(body):
    """(ParameterSetID, Protocol, Port) of a decoded ServiceDetailRes."""
    return [
        (each.ParameterSetID, *(p.get("stringValue") or p.get("intValue") for p in each.Parameter))
        for each in body.ServiceParameterList.ParameterSet
    ]


def test_internet_access_chosen_end_to_end_beside_broken_providers(log_events):
    """
    With Internet access, a provider that raises everywhere and one that
    offers malformed services: ServiceDiscovery lists InternetAccess only
    (the others logged by name), ServiceDetail gives sets 3 (http/80) and 4
    (https/443), PaymentServiceSelection of set 4 reaches the provider
    (port 443), and the whole DC session runs on to SessionStop.
    """
    chosen = []
    internet = InternetAccess(["http", "https"], on_selected=chosen.append)
    malformed = FakeValueAddedService("malformed", [{"service_id": 0}, {"service_id": 70, "service_name": "x" * 40}])
    h, _ = harness([Raising(), internet, malformed])
    h.run(["SessionSetupReq"])
    code, body, _ = h.send("ServiceDiscoveryReq")
    assert code == "OK"
    assert [(s.ServiceID, s.ServiceName, s.ServiceCategory, s.FreeService) for s in body.ServiceList.Service] == [(3, "InternetAccess", "Internet", True)]
    code, body, _ = answer_of(h.send_deferred("ServiceDetailReq", ServiceID=3))
    assert code == "OK" and body.ServiceID == 3
    assert sets_of(body) == [(3, "http", 80), (4, "https", 443)]
    code, _, _ = answer_of(h.send_deferred("PaymentServiceSelectionReq", **selection(1, (3, 4))))
    assert code == "OK"
    assert chosen == [InternetSelection((4,), ("https",), (443,))]
    h.run(ISO2_DC_SESSION[3:])
    text = log_events.text()
    assert "value-added service raiser offered_services raised RuntimeError: offered broke" in text
    assert "value-added service malformed offers a malformed service" in text


def test_raising_selection_does_not_fail_the_session(log_events):
    """A provider raising in selected_services is logged by name; PaymentServiceSelectionRes is OK and the session goes on."""
    raiser = FakeValueAddedService("picky", [{"service_id": 60001}], {60001: [{"set_id": 1, "parameters": [{"name": "On", "value": {"bool_value": True}}]}]})

    def refuse(selected):
        raise RuntimeError("no thanks")

    raiser.selected_services = refuse
    h, _ = harness([raiser])
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    code, _, reply = answer_of(h.send_deferred("PaymentServiceSelectionReq", **selection(1, (60001, 1))))
    assert code == "OK" and not reply.close
    h.run(ISO2_DC_SESSION[3:])
    assert "value-added service picky selected_services raised RuntimeError: no thanks; the selection stands" in log_events.text()


def test_slow_selection_is_bounded_by_the_registry():
    """A provider that never answers selected_services holds PaymentServiceSelectionRes for SELECTION_TIMEOUT at most, well inside its 1.5 s."""
    slow = FakeValueAddedService("slow", [{"service_id": 60002}], asynchronous=True)
    h, registry = harness([slow])
    slow.release()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    slow.release()
    answered = h.send_deferred("PaymentServiceSelectionReq", **selection(1, 60002))
    assert not answered.called
    h.clock.advance(registry.timeouts["selected_services"])
    code, _, _ = answer_of(answered)
    assert code == "OK" and registry.timeouts["selected_services"] < 1.5


@pytest.mark.parametrize("failure", ["raises", "times out", "wrong shape"])
def test_failing_provider_at_service_detail_does_not_end_the_session(failure):
    """A provider failing at ServiceDetail (raising, silent past DETAIL_TIMEOUT, answering the wrong shape) leaves the session able to go on: ServiceDetailRes OK without ServiceParameterList (the ServiceID was offered), then a whole session."""
    provider = FakeValueAddedService("flaky", [{"service_id": 60003}], {60003: [{"set_id": 1}]} if failure == "wrong shape" else {}, asynchronous=failure == "times out")
    h, _ = harness([provider])
    provider.release()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    provider.release()
    answered = h.send_deferred("ServiceDetailReq", ServiceID=60003)
    h.clock.advance(DETAIL_TIMEOUT)
    code, body, reply = answer_of(answered)
    assert code == "OK" and not reply.close and body.get("ServiceParameterList") is None
    h.run(ISO2_DC_SESSION[2:])


def test_value_added_services_only_over_tls():
    """Over plain TCP ServiceDiscoveryRes lists no value-added service; over TLS it does."""
    h, _ = harness([InternetAccess()], secure=True)
    h.run(["SessionSetupReq"])
    _, body, _ = h.send("ServiceDiscoveryReq")
    assert [s.ServiceID for s in body.ServiceList.Service] == [3]
    h, _ = harness([InternetAccess()], secure=False)
    h.run(["SessionSetupReq"])
    _, body, _ = h.send("ServiceDiscoveryReq")
    assert body.get("ServiceList") is None


@pytest.fixture
def internet_dropin(monkeypatch):
    """The shipped drop-in configured for https, re-imported; re-imported unconfigured afterwards."""
    from evsev2g.plugins import evsev2g_vas

    monkeypatch.setenv("EVSEV2G_INTERNET_ACCESS", "https")
    importlib.reload(evsev2g_vas)
    yield evsev2g_vas.internet_access
    monkeypatch.undo()
    importlib.reload(evsev2g_vas)


def test_twistd_session_factory_serves_the_dropin_over_exi(internet_dropin):
    """
    The session factory twistd builds (real codecs, shipped plugins) finds
    the Internet-access drop-in: an ISO-2 EV on a TLS link sees it in
    ServiceDiscoveryRes, gets its parameter set in ServiceDetailRes and
    selects it, all as EXI bytes through V2GSession.
    """
    from evsev2g.config import load_config
    from evsev2g.session import build_session_factory

    factory = build_session_factory(load_config(None, []), Clock())
    link = FakeSessionLink(secure=True)
    session = factory.new_session(link)
    session.payload_received(0x8001, factory.handshake_codec.encode(app_protocol_request((ISO2, 2, 0, 1, 1))))
    codec = factory.codec_for(session.protocol)

    def exchange(name, **fields):
        sid = session.machine.session_id or b"\x00"
        session.payload_received(0x8001, codec.encode(iso2_request(name, sid, **fields)))
        return codec.decode(link.sent[-1][1]).Body.children[0][1]

    assert exchange("SessionSetupReq").ResponseCode == "OK_NewSessionEstablished"
    services = exchange("ServiceDiscoveryReq").ServiceList.Service
    assert [(s.ServiceID, s.ServiceName) for s in services] == [(3, "InternetAccess")]
    detail = exchange("ServiceDetailReq", ServiceID=3)
    assert detail.ResponseCode == "OK" and sets_of(detail) == [(4, "https", 443)]
    assert exchange("PaymentServiceSelectionReq", **selection(1, (3, 4))).ResponseCode == "OK"
    assert internet_dropin.selections == [InternetSelection((4,), ("https",), (443,))]
    assert not link.closed
