"""
The value-added-service registry (:mod:`evsev2g.vas`): provider answers of
every kind, timeouts, misbehaving providers, duplicates, the EV's selection.
"""

from __future__ import annotations

import asyncio

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from evsev2g.errors import ServiceUnavailable
from evsev2g.interfaces import IServiceRegistry, IValueAddedService
from evsev2g.testing import FakeValueAddedService
from evsev2g.vas import DETAIL_TIMEOUT, SELECTION_TIMEOUT, ServiceRegistry
from evsev2g.vas_types import OfferedService

HTTP = {"set_id": 3, "parameters": [{"name": "Protocol", "value": {"finite_string": "http"}}, {"name": "Port", "value": {"int_value": 80}}]}


def outcome(deferred: Deferred):
    """The result of a fired Deferred, or its Failure; fails the test if it has not fired."""
    box = []
    deferred.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def fired(deferred: Deferred) -> bool:
    """Whether ``deferred`` has fired (without consuming its result)."""
    return deferred.called


def shop(name="shop", asynchronous=False, **sets):
    """A fake provider offering service 60001 with one set."""
    return FakeValueAddedService(
        name,
        [{"service_id": 60001, "service_name": "Shop"}],
        {60001: [{"set_id": 1, "parameters": [{"name": "Coupon", "value": {"bool_value": True}}]}]},
        asynchronous=asynchronous,
    )


def internet(name="net", asynchronous=False, sets=(HTTP,)):
    """A fake provider offering InternetAccess (3)."""
    return FakeValueAddedService(name, [{"service_id": 3}], {3: list(sets)}, asynchronous=asynchronous)


def test_fake_and_registry_provide_their_interfaces():
    """The shipped fake provider and the registry pass verifyObject."""
    assert verifyObject(IValueAddedService, FakeValueAddedService())
    assert verifyObject(IServiceRegistry, ServiceRegistry(clock=Clock()))


def test_synchronous_provider_is_offered_at_once_with_defaults_filled():
    """Plain answers are applied in the constructor; names and categories of known ids come from ISO 15118-2 Table 105, FreeService defaults to true."""
    registry = ServiceRegistry([internet(), shop()], clock=Clock())
    offered = registry.offered()
    assert [(s.service_id, s.service_name, s.service_category, s.service_scope, s.free_service) for s in offered] == [
        (3, "InternetAccess", "Internet", None, True),
        (60001, "Shop", "OtherCustom", None, True),
    ]
    assert all(isinstance(s, OfferedService) for s in offered)
    with pytest.raises(AttributeError):
        offered[0].service_id = 4  # records are immutable
    assert registry.service(60001).provider is registry.providers[1]


def test_filters_by_scope_and_category():
    """offered() applies the EV's ServiceScope and ServiceCategory filters."""
    scoped = FakeValueAddedService("scoped", [{"service_id": 70, "service_scope": "depot", "service_category": "Internet"}])
    registry = ServiceRegistry([internet(), scoped], clock=Clock())
    assert [s.service_id for s in registry.offered(category="Internet")] == [3, 70]
    assert [s.service_id for s in registry.offered(scope="depot")] == [70]
    assert registry.offered(scope="depot", category="OtherCustom") == []


def test_parameter_sets_from_a_synchronous_provider_are_a_checked_copy():
    """parameter_sets() fires at once with a copy the provider cannot change afterwards."""
    provider = internet()
    registry = ServiceRegistry([provider], clock=Clock())
    sets = outcome(registry.parameter_sets(3))
    assert sets == [HTTP]
    provider.parameter_sets[3][0]["set_id"] = 99
    assert sets[0]["set_id"] == 3


def test_deferred_provider_answers_later():
    """offered() is empty until the provider's Deferred fires; parameter_sets waits for it."""
    clock = Clock()
    provider = internet(asynchronous=True)
    registry = ServiceRegistry([provider], clock=clock)
    assert registry.offered() == []
    provider.release()
    assert [s.service_id for s in registry.offered()] == [3]
    asked = registry.parameter_sets(3)
    assert not fired(asked)
    clock.advance(DETAIL_TIMEOUT / 2)
    provider.release()
    assert outcome(asked) == [HTTP]
    assert not clock.getDelayedCalls(), "the timeout is cancelled once the answer is in"


@implementer(IValueAddedService)
class AsyncioProvider:
    """Answers with asyncio futures of a loop the test steps by hand (or coroutines)."""

    name = "aio"

    def __init__(self, loop):
        self.loop = loop
        self.pending: list[asyncio.Future] = []

    def offered_services(self):
        """A future that is already done."""
        future = self.loop.create_future()
        future.set_result([{"service_id": 60002}])
        return future

    def get_service_parameters(self, service_id):
        """A future the test completes."""
        future = self.loop.create_future()
        self.pending.append(future)
        return future

    async def selected_services(self, selected_services):
        """A coroutine function."""
        self.selected = selected_services


def test_asyncio_futures_and_coroutines_are_normalised():
    """Done futures are read at once, pending ones complete when their loop runs, coroutine functions are driven to the end."""
    loop = asyncio.new_event_loop()
    try:
        provider = AsyncioProvider(loop)
        registry = ServiceRegistry([provider], clock=Clock())
        assert [s.service_id for s in registry.offered()] == [60002]
        asked = registry.parameter_sets(60002)
        assert not fired(asked)
        provider.pending[0].set_result([HTTP])
        loop.run_until_complete(asyncio.sleep(0))
        assert outcome(asked) == [HTTP]
        failing = registry.parameter_sets(60002)
        provider.pending[1].set_exception(OSError("modem down"))
        loop.run_until_complete(asyncio.sleep(0))
        failure = outcome(failing)
        assert failure.check(ServiceUnavailable) and "OSError: modem down" in str(failure.value)
        assert outcome(registry.select([{"service_id": 60002, "parameter_set_id": 3}])) is None
        assert provider.selected == [{"service_id": 60002, "parameter_set_id": 3}]
    finally:
        loop.close()


def test_timeout_fails_with_service_unavailable_and_drops_the_late_answer(log_events):
    """A provider that does not answer within the timeout gives ServiceUnavailable from the injected clock; its late answer is logged and dropped."""
    clock = Clock()
    provider = internet(asynchronous=True)
    registry = ServiceRegistry([provider], clock=clock, timeout=0.5)
    provider.release()
    asked = registry.parameter_sets(3)
    clock.advance(0.49)
    assert not fired(asked)
    clock.advance(0.01)
    failure = outcome(asked)
    assert failure.check(ServiceUnavailable)
    assert not failure.value.unknown and "net did not answer" in str(failure.value)
    provider.release()
    text = log_events.text()
    assert "net get_service_parameters(3) did not answer" in text
    assert "net answered get_service_parameters after the timeout; dropped" in text


def test_unknown_service_fails_at_once():
    """A ServiceID no provider offers fails at once with unknown=True (FAILED_ServiceIDInvalid)."""
    registry = ServiceRegistry([internet()], clock=Clock())
    failure = outcome(registry.parameter_sets(4))
    assert failure.check(ServiceUnavailable) and failure.value.unknown and failure.value.service_id == 4


@implementer(IValueAddedService)
class Raising:
    """Raises from every method."""

    name = "raiser"

    def offered_services(self):
        """Raises."""
        raise RuntimeError("offered broke")

    def get_service_parameters(self, service_id):
        """Raises."""
        raise RuntimeError("detail broke")

    def selected_services(self, selected_services):
        """Raises."""
        raise RuntimeError("selection broke")


def test_raising_provider_is_reported_by_name_and_left_out(log_events):
    """A provider that raises in offered_services is logged by name and the others are offered as if it were not there."""
    registry = ServiceRegistry([Raising(), shop()], clock=Clock())
    assert [s.service_id for s in registry.offered()] == [60001]
    assert "value-added service raiser offered_services raised RuntimeError: offered broke" in log_events.text()


def test_raising_provider_after_a_good_answer_keeps_the_good_one(log_events):
    """A refresh that raises keeps the provider's last good answer."""
    provider = internet()
    registry = ServiceRegistry([provider], clock=Clock())

    def broken():
        raise RuntimeError("flaky")

    provider.offered_services = broken
    assert outcome(registry.refresh()) is None
    assert [s.service_id for s in registry.offered()] == [3]
    assert "its last good answer is kept" in log_events.text()


def test_raising_parameter_sets_give_service_unavailable(log_events):
    """get_service_parameters raising gives ServiceUnavailable and a log line naming the provider, with the traceback."""
    provider = internet()
    registry = ServiceRegistry([provider], clock=Clock())
    provider.parameter_sets.clear()  # the fake raises KeyError now
    failure = outcome(registry.parameter_sets(3))
    assert failure.check(ServiceUnavailable) and "net raised KeyError" in str(failure.value)
    assert log_events.failures() and "value-added service net get_service_parameters(3) raised KeyError" in log_events.text()


WRONG_PARAMETER_SETS = {
    "not a list": {"set_id": 1},
    "set without parameters": [{"set_id": 1, "parameters": []}],
    "unknown field": [dict(HTTP, extra=1)],
    "duplicate set ids": [HTTP, HTTP],
    "set id beyond a short": [dict(HTTP, set_id=40000)],
    "two value variants": [{"set_id": 1, "parameters": [{"name": "x", "value": {"int_value": 1, "bool_value": True}}]}],
    "no value variant": [{"set_id": 1, "parameters": [{"name": "x", "value": {}}]}],
    "byte out of range": [{"set_id": 1, "parameters": [{"name": "x", "value": {"byte_value": 128}}]}],
    "bool as int": [{"set_id": 1, "parameters": [{"name": "x", "value": {"int_value": True}}]}],
    "string too long": [{"set_id": 1, "parameters": [{"name": "x", "value": {"finite_string": "y" * 81}}]}],
    "empty name": [{"set_id": 1, "parameters": [{"name": "", "value": {"bool_value": True}}]}],
    "infinite rational": [{"set_id": 1, "parameters": [{"name": "x", "value": {"rational_number": float("inf")}}]}],
    "17 parameters": [{"set_id": 1, "parameters": [{"name": f"p{i}", "value": {"short_value": i}} for i in range(17)]}],
    "256 sets": [{"set_id": i, "parameters": [{"name": "x", "value": {"bool_value": True}}]} for i in range(256)],
}


@pytest.mark.parametrize("answer", WRONG_PARAMETER_SETS.values(), ids=WRONG_PARAMETER_SETS.keys())
def test_wrong_parameter_set_shapes_give_service_unavailable(answer, log_events):
    """An answer that is not a list of valid EVerest ParameterSets fits in no ServiceDetailRes: ServiceUnavailable, logged as the wrong shape."""
    provider = internet()
    provider.parameter_sets[3] = answer
    registry = ServiceRegistry([provider], clock=Clock())
    failure = outcome(registry.parameter_sets(3))
    assert failure.check(ServiceUnavailable) and "answered the wrong shape" in str(failure.value)
    assert "value-added service net get_service_parameters(3) answered the wrong shape" in log_events.text()


def test_every_value_variant_passes():
    """Each ParameterValue variant within its range is accepted and kept as given; an empty list is a valid answer."""
    values = [{"finite_string": ""}, {"rational_number": 2.5}, {"byte_value": -128}, {"short_value": 32767}, {"int_value": -(2**31)}, {"bool_value": False}]
    answer = [{"set_id": -1, "parameters": [{"name": f"p{i}", "value": value} for i, value in enumerate(values)]}]
    provider = internet(sets=answer)
    registry = ServiceRegistry([provider], clock=Clock())
    assert outcome(registry.parameter_sets(3)) == answer
    provider.parameter_sets[3] = []
    assert outcome(registry.parameter_sets(3)) == []


def test_malformed_offered_entries_are_left_out_one_by_one(log_events):
    """Each malformed OfferedService entry is logged and left out; the well-formed ones of the same answer are offered."""
    provider = FakeValueAddedService(
        "mixed",
        [
            {"service_id": 1},  # the charge service
            {"service_id": 70000},
            {"service_id": 61, "service_name": "n" * 33},
            {"service_id": 62, "service_scope": ""},
            {"service_id": 63, "service_category": "EVCharging"},
            {"service_id": 64, "free_service": "yes"},
            {"service_id": 65, "colour": "red"},
            "not a dict",
            {"service_id": 66, "service_name": "Fine", "service_scope": "s" * 64, "free_service": False},
            {"service_id": 66},
        ],
    )
    registry = ServiceRegistry([provider], clock=Clock())
    assert [(s.service_id, s.free_service) for s in registry.offered()] == [(66, False)]
    text = log_events.text()
    for fragment in ("service_id = 1 is outside", "70000", "service 61 service_name has 33", "service 62 service_scope", "EVCharging", "free_service must be a boolean", "unknown field(s) colour", "must be an object", "offers service 66 twice"):
        assert fragment in text


@pytest.mark.parametrize("answer", [None, {"service_id": 3}, [{"service_id": 3}] * 65], ids=["None", "dict", "65 entries"])
def test_offered_answer_that_is_no_list_keeps_the_last_good_one(answer, log_events):
    """An offered_services answer that is not a list (or absurdly long) is refused whole; the last good answer stays."""
    provider = internet()
    registry = ServiceRegistry([provider], clock=Clock())
    provider.services = answer
    registry.refresh(provider)
    assert [s.service_id for s in registry.offered()] == [3]
    assert "net offered_services answered the wrong shape" in log_events.text()


def test_duplicate_ids_first_provider_wins_and_is_logged_once(log_events):
    """Two providers offering the same ServiceID: the first added wins, ServiceDetail goes to it, the clash is logged once however often the list is rebuilt."""
    first, second = internet("first"), internet("second", sets=[dict(HTTP, set_id=4)])
    registry = ServiceRegistry([first, second], clock=Clock())
    assert [s.provider for s in registry.offered()] == [first]
    assert outcome(registry.parameter_sets(3)) == [HTTP]
    registry.refresh()
    registry.refresh()
    assert log_events.text().count("second offers service 3, which first offers already") == 1
    registry.remove_provider(first)
    assert [s.provider for s in registry.offered()] == [second]


def test_service_list_holds_at_most_eight():
    """More than 8 services (ServiceListType maxOccurs) are cut, later providers' first."""
    many = FakeValueAddedService("many", [{"service_id": 100 + i} for i in range(6)])
    more = FakeValueAddedService("more", [{"service_id": 200 + i} for i in range(6)])
    registry = ServiceRegistry([many, more], clock=Clock())
    assert [s.service_id for s in registry.offered()] == [100, 101, 102, 103, 104, 105, 200, 201]


def test_newest_question_wins_when_answers_cross():
    """A slow answer to an older refresh does not overwrite the answer to a newer one."""
    old, new = Deferred(), Deferred()
    provider = internet()
    registry = ServiceRegistry([provider], clock=Clock())
    answers = iter([old, new])
    provider.offered_services = lambda: next(answers)
    registry.refresh()
    registry.refresh()
    new.callback([{"service_id": 60010}])
    old.callback([{"service_id": 60009}])
    assert [s.service_id for s in registry.offered()] == [60010]


def test_refresh_picks_up_changes_and_fires_when_all_answered():
    """refresh() re-asks every provider and fires once all have answered (or timed out)."""
    clock = Clock()
    fast, slow = shop(), internet(asynchronous=True)
    registry = ServiceRegistry([fast, slow], clock=clock, timeout=1.0)
    fast.services.append({"service_id": 60003})
    done = registry.refresh()
    assert [s.service_id for s in registry.offered()] == [60001, 60003]
    assert not fired(done)
    clock.advance(1.0)
    assert outcome(done) is None


def test_broken_provider_is_not_added(log_events):
    """add_provider refuses an object that fails verifyObject, naming it; adding the same provider twice changes nothing."""

    class Half:
        name = "half"

        def offered_services(self):
            return []

    registry = ServiceRegistry(clock=Clock())
    registry.add_provider(Half())
    assert registry.providers == ()
    assert "value-added service half is broken and left out" in log_events.text()
    provider = internet()
    registry.add_provider(provider)
    registry.add_provider(provider)
    assert registry.providers == (provider,)


def test_remove_provider_drops_its_services_and_late_answers():
    """A removed provider's services go, and an answer it gives afterwards is ignored."""
    provider = internet(asynchronous=True)
    registry = ServiceRegistry([provider], clock=Clock())
    registry.remove_provider(provider)
    provider.release()
    assert registry.offered() == [] and registry.providers == ()
    registry.remove_provider(provider)  # twice is harmless


def test_select_groups_per_provider_and_skips_what_no_provider_offers():
    """The EV's choice is handed to each provider once, only its own entries, in the EV's order; the charge service is not handed on; a missing set id is 0."""
    net, other = internet(), shop()
    registry = ServiceRegistry([net, other], clock=Clock())
    chosen = [
        {"service_id": 1},
        {"service_id": 60001, "parameter_set_id": 1},
        {"service_id": 3, "parameter_set_id": 3},
        {"service_id": 2, "parameter_set_id": 1},
        {"service_id": 3, "parameter_set_id": None},
    ]
    assert outcome(registry.select(chosen)) is None
    assert net.selections == [[{"service_id": 3, "parameter_set_id": 3}, {"service_id": 3, "parameter_set_id": 0}]]
    assert other.selections == [[{"service_id": 60001, "parameter_set_id": 1}]]
    assert outcome(registry.select([{"service_id": 1}])) is None
    assert len(net.selections) == 1


def test_select_survives_raising_slow_and_malformed(log_events):
    """A provider raising in selected_services or never answering is logged by name; select still fires None and the others are told."""
    clock = Clock()
    raiser = Raising()
    raiser.offered_services = lambda: [{"service_id": 60020}]
    slow = shop("slow", asynchronous=True)
    registry = ServiceRegistry([raiser, slow, internet()], clock=clock)
    slow.release()
    done = registry.select([{"service_id": 60020}, {"service_id": 60001}, {"service_id": 3, "parameter_set_id": 3}])
    assert registry.providers[2].selections == [[{"service_id": 3, "parameter_set_id": 3}]]
    assert not fired(done)
    clock.advance(SELECTION_TIMEOUT)
    assert outcome(done) is None
    text = log_events.text()
    assert "raiser selected_services raised RuntimeError: selection broke; the selection stands" in text
    assert "slow selected_services did not answer" in text
    assert outcome(registry.select("nonsense")) is None
    assert "selected value-added services not handed on" in log_events.text()


def test_provider_answering_with_a_fired_deferred_is_synchronous():
    """A provider returning an already fired Deferred is as good as a plain value (no timer left behind)."""
    clock = Clock()
    provider = internet()
    provider.get_service_parameters = lambda service_id: succeed([HTTP])
    registry = ServiceRegistry([provider], clock=clock)
    assert outcome(registry.parameter_sets(3)) == [HTTP]
    assert clock.getDelayedCalls() == []


def test_answers_are_cut_to_what_ev_decoders_hold(log_events):
    """Schema-valid but longer than EV decoders hold (cbv2g: 5 sets, 64 characters): cut as EvseV2G does, each cut logged by provider."""
    long_sets = [{"set_id": i, "parameters": [{"name": "n" * 70, "value": {"finite_string": "v" * 80}}]} for i in range(7)]
    provider = internet(sets=long_sets)
    registry = ServiceRegistry([provider], clock=Clock())
    sets = outcome(registry.parameter_sets(3))
    assert [each["set_id"] for each in sets] == [0, 1, 2, 3, 4]
    assert sets[0]["parameters"] == [{"name": "n" * 64, "value": {"finite_string": "v" * 64}}]
    assert provider.parameter_sets[3][0]["parameters"][0]["name"] == "n" * 70, "the provider's answer is not changed"
    text = log_events.text()
    assert "value-added service net service 3: only the first 5 parameter sets fit EV decoders; sets [5, 6] left out" in text
    assert "string cut to 64 characters" in text


def test_offered_asks_again_each_time():
    """offered() asks the providers again: a synchronous change shows at once, an asynchronous one from the next call, the last good answer in between."""
    clock = Clock()
    sync, slow = shop(), internet(asynchronous=True)
    registry = ServiceRegistry([sync, slow], clock=clock)
    slow.release()
    sync.services.append({"service_id": 60004})
    slow.services.append({"service_id": 60005})
    assert [s.service_id for s in registry.offered()] == [60001, 60004, 3]
    slow.release()
    assert [s.service_id for s in registry.offered()] == [60001, 60004, 3, 60005]
    slow.release()
    clock.advance(10)
    assert not clock.getDelayedCalls()


def test_a_repeated_error_is_traced_once(log_events):
    """A provider raising the same error at every ServiceDiscovery logs its traceback once, then one line each time."""
    registry = ServiceRegistry([Raising()], clock=Clock())
    registry.offered()
    registry.offered()
    lines = [e for e in log_events if "raiser offered_services raised" in str(e.get("log_format", "")) or e.get("provider") == "raiser"]
    assert len(lines) == 3
    assert len(log_events.failures()) == 1
