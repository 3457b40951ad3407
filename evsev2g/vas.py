"""
The value-added-service registry: every :class:`IValueAddedService`
provider the SECC knows, as one list of services.

Providers are local plugins (:func:`load_value_added_services`, drop-ins
in :mod:`evsev2g.plugins`) and, under EVerest, the ISO15118_vas modules the
bridge reaches over MQTT (it adds one provider per module with
:meth:`ServiceRegistry.add_provider`).  To the ISO 15118-2 state machine
they are all the same:

- :meth:`ServiceRegistry.offered` — ServiceDiscoveryRes's ServiceList
  entries (ServiceScope/ServiceCategory filters included), answered at
  once from what the providers last said.
- :meth:`ServiceRegistry.parameter_sets` — ServiceDetailRes's
  ServiceParameterList, as a ``Deferred`` bounded by a timeout so the
  answer still goes out within V2G_SECC_Msg_Performance_Time; an id no
  provider offers fails at once (FAILED_ServiceIDInvalid,
  [V2G2-425]/[V2G2-464]).
- :meth:`ServiceRegistry.select` — PaymentServiceSelectionReq's
  SelectedServiceList, handed to each provider once per request.

**Provider results.**  A provider may answer with a plain value, raise, or
return a ``Deferred``, a coroutine or an asyncio future.  Every call goes
through ``txaio.as_future`` (after ``txaio.use_twisted()``): it calls the
method and turns a plain value into a fired ``Deferred``, an exception into
a failed one, a coroutine into ``Deferred.fromCoroutine`` and leaves a
``Deferred`` as it is.  An asyncio future is not something Twisted waits
on by itself: one that is already done is read at once, a pending one is
wrapped with ``Deferred.fromFuture`` — it completes when an asyncio loop
runs (``twistd --reactor=asyncio``), else the registry's timeout answers
for it.

**Misbehaviour.**  A provider that raises, answers late or answers with the
wrong shape (:mod:`evsev2g.vas_types`) is reported by its name and left
out of that answer; the registry never fails a session because of it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

import txaio
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from evsev2g.errors import ServiceUnavailable
from evsev2g.interfaces import IServiceRegistry, IValueAddedService
from evsev2g.plugin_loader import load_plugins, plugin_label
from evsev2g.timers import V2G_SECC_LONG_MSG_PERFORMANCE_TIME, V2G_SECC_MSG_PERFORMANCE_TIME
from evsev2g.vas_types import (
    CHARGE_SERVICE_ID,
    SELECTED_SERVICES_MAX,
    SERVICE_LIST_MAX,
    OfferedService,
    ShapeError,
    check_offered_service,
    check_parameter_sets,
    check_selected_service,
    fit_for_ev_decoders,
)

txaio.use_twisted()

__all__ = [
    "DETAIL_TIMEOUT",
    "SELECTION_TIMEOUT",
    "OFFERED_ANSWER_MAX",
    "OfferedService",
    "ServiceRegistry",
    "ServiceUnavailable",
    "load_value_added_services",
]

#: How long a provider may take for its parameter sets (seconds):
#: ServiceDetailRes must leave within 4.5 s (ISO 15118-2 Table 109, the EV
#: waits 5 s); half a second is left for the session and the codec.
DETAIL_TIMEOUT = V2G_SECC_LONG_MSG_PERFORMANCE_TIME - 0.5

#: How long a provider may take to take note of the EV's selection, or to
#: say what it offers (seconds): PaymentServiceSelectionRes must leave
#: within V2G_SECC_Msg_Performance_Time (1.5 s, Table 109; the EV waits
#: 2 s); a third of it is left for the session and the codec.
SELECTION_TIMEOUT = V2G_SECC_MSG_PERFORMANCE_TIME * 2 / 3

#: Most entries one ``offered_services()`` answer may have; a longer answer
#: is refused as a whole.
OFFERED_ANSWER_MAX = 64


def load_value_added_services(package=None, log: Logger | None = None) -> list[object]:
    """
    Every value-added-service plugin in the drop-in package that passes
    ``verifyObject``; the others are logged by name and left out.

    :param package: the plugin package (default :mod:`evsev2g.plugins`).
    :param log: where broken plugins are reported.
    :returns: a ``list`` of :class:`~evsev2g.interfaces.IValueAddedService`
        providers, in the order found.
    """
    return load_plugins(IValueAddedService, "value-added service", package, log=log or ServiceRegistry.log)


def _settle_asyncio(result: Any) -> Any:
    """
    An asyncio future as something a ``Deferred`` chain can wait on.

    :param result: what a provider's call gave.
    :returns: ``result`` itself unless it is an asyncio future; the result
        of a done one; a ``Deferred`` for a pending one.
    :raises: the exception of a done, failed future.
    """
    if not asyncio.isfuture(result):
        return result
    if result.done():
        if result.cancelled():
            raise CancelledError("the provider's asyncio future was cancelled")
        return result.result()
    return Deferred.fromFuture(result)


class _ProviderState:
    """What the registry knows of one provider."""

    __slots__ = ("provider", "name", "asked", "applied", "services")

    def __init__(self, provider: object):
        self.provider = provider
        self.name = plugin_label(provider)
        self.asked = 0
        self.applied = 0
        self.services: tuple[OfferedService, ...] = ()


@implementer(IServiceRegistry)
class ServiceRegistry:
    """
    The value-added services of every provider, in provider order.

    :param providers: :class:`~evsev2g.interfaces.IValueAddedService`
        providers to start with (each is asked for its services at once).
    :param clock: ``IReactorTime`` that times provider answers (the reactor;
        a ``Clock`` in tests).
    :param timeout: seconds a provider may take for any answer; ``None``
        for the standard's budgets (:data:`DETAIL_TIMEOUT` for parameter
        sets, :data:`SELECTION_TIMEOUT` for the rest).
    :ivar timeouts: method name → seconds a provider may take for it.
    """

    log = Logger()

    def __init__(self, providers: Iterable[object] = (), *, clock, timeout: float | None = None):
        self.clock = clock
        self.timeouts = {
            "offered_services": SELECTION_TIMEOUT if timeout is None else timeout,
            "get_service_parameters": DETAIL_TIMEOUT if timeout is None else timeout,
            "selected_services": SELECTION_TIMEOUT if timeout is None else timeout,
        }
        self._states: dict[int, _ProviderState] = {}
        self._table: dict[int, OfferedService] = {}
        self._warned: set[str] = set()
        for provider in providers:
            self.add_provider(provider)

    # -- providers -----------------------------------------------------------

    @property
    def providers(self) -> tuple[object, ...]:
        """The providers, in the order they were added."""
        return tuple(state.provider for state in self._states.values())

    def add_provider(self, provider: object) -> Deferred:
        """
        Add a provider after the others and ask it for its services.

        A provider that does not pass ``verifyObject`` against
        :class:`~evsev2g.interfaces.IValueAddedService` is logged by name and
        not added; adding one twice changes nothing.

        :param provider: the provider.
        :returns: a ``Deferred`` firing ``None`` once its first answer is in
            (or it failed or timed out; see :meth:`refresh`).
        """
        if id(provider) in self._states:
            return succeed(None)
        try:
            verifyObject(IValueAddedService, provider)
        except (Invalid, Exception) as error:
            self.log.error(
                "value-added service {provider} is broken and left out: {error}",
                provider=plugin_label(provider),
                error=str(error).strip(),
            )
            return succeed(None)
        self._states[id(provider)] = _ProviderState(provider)
        return self.refresh(provider)

    def remove_provider(self, provider: object) -> None:
        """
        Forget a provider and its services (an answer still on its way is
        dropped when it arrives).

        :param provider: a provider added before; others are ignored.
        """
        if self._states.pop(id(provider), None) is not None:
            self._rebuild()

    # -- ServiceDiscovery ------------------------------------------------------

    def refresh(self, provider: object = None) -> Deferred:
        """
        Ask providers for their services again.

        Call it when a provider reports a change (the EVerest bridge does on
        each ``offered_vas`` var) or at the start of a session.  Plain
        answers are applied before this returns; later ones when they come.
        An answer that fails, times out or is not a list keeps the
        provider's last good one; bad entries in a list are left out, each
        logged.  When answers overtake each other, the newest question's
        answer wins.

        :param provider: one provider, or ``None`` for all.
        :returns: a ``Deferred`` firing ``None`` once every provider asked
            has answered, failed or timed out; it never fails.
        """
        if provider is None:
            states = list(self._states.values())
        else:
            state = self._states.get(id(provider))
            states = [state] if state is not None else []
        asked = [self._ask_offered(state) for state in states]
        if not asked:
            return succeed(None)
        return txaio.gather(asked, consume_exceptions=True).addCallback(lambda _: None)

    def _ask_offered(self, state: _ProviderState) -> Deferred:
        state.asked += 1
        ticket = state.asked

        def answered(answer: Any) -> None:
            if self._states.get(id(state.provider)) is not state or ticket < state.applied:
                return
            state.applied = ticket
            state.services = self._offered_records(state, answer)
            self._rebuild()

        def failed(failure: Failure) -> None:
            self._report(state.name, "offered_services", failure, "its last good answer is kept")

        asked = self._ask(state, "offered_services")
        asked.addCallback(answered)
        asked.addErrback(failed)
        return asked

    def _offered_records(self, state: _ProviderState, answer: Any) -> tuple[OfferedService, ...]:
        if not isinstance(answer, (list, tuple)) or len(answer) > OFFERED_ANSWER_MAX:
            what = f"{len(answer)} entries" if isinstance(answer, (list, tuple)) else type(answer).__name__
            raise ShapeError(f"offered_services must answer a list of at most {OFFERED_ANSWER_MAX} services, not {what}")
        records: dict[int, OfferedService] = {}
        for entry in answer:
            try:
                record = check_offered_service(entry, state.provider)
            except ShapeError as error:
                self.log.error("value-added service {provider} offers a malformed service, left out: {error}", provider=state.name, error=str(error))
                continue
            if record.service_id in records:
                self.log.warn("value-added service {provider} offers service {service_id} twice; the first is kept", provider=state.name, service_id=record.service_id)
                continue
            records[record.service_id] = record
        return tuple(records.values())

    def _rebuild(self) -> None:
        table: dict[int, OfferedService] = {}
        for state in self._states.values():
            for record in state.services:
                first = table.get(record.service_id)
                if first is not None:
                    self._warn_once(
                        f"value-added service {state.name} offers service {record.service_id}, which"
                        f" {plugin_label(first.provider)} offers already; {plugin_label(first.provider)}'s is kept"
                    )
                elif len(table) >= SERVICE_LIST_MAX:
                    self._warn_once(
                        f"value-added service {state.name}: service {record.service_id} left out, a"
                        f" ServiceList holds at most {SERVICE_LIST_MAX} services"
                    )
                else:
                    table[record.service_id] = record
        self._table = table

    def _warn_once(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            self.log.warn("{text}", text=text)

    def offered(self, scope: str | None = None, category: str | None = None) -> list[OfferedService]:
        """
        The services to list in ServiceDiscoveryRes, first provider first.

        Every provider is asked again first (:meth:`refresh`): what a
        provider answers at once is used now, a later answer (a pending
        ``Deferred``) only from the next call on; until then its last good
        answer stands.  So ServiceDiscovery never waits for a provider.

        At most :data:`~evsev2g.vas_types.SERVICE_LIST_MAX`; a ServiceID two
        providers offer is the first one's.  Whether to list them at all
        (ISO 15118-2 offers them only over TLS, as EvseV2G and Josev do) and
        how they share the list with the SECC's own services is the state
        machine's decision.

        :param scope: the EV's ServiceScope filter: only services with this
            scope; ``None`` for all.
        :param category: the EV's ServiceCategory filter (``"Internet"`` …);
            ``None`` for all.
        :returns: a new ``list`` of :class:`~evsev2g.vas_types.OfferedService`.
        """
        self.refresh()
        return [
            record
            for record in self._table.values()
            if (scope is None or record.service_scope == scope) and (category is None or record.service_category == category)
        ]

    def service(self, service_id: int) -> OfferedService | None:
        """
        :param service_id: a ServiceID.
        :returns: the offered service with that id, or ``None``.
        """
        return self._table.get(service_id)

    # -- ServiceDetail -------------------------------------------------------------

    def parameter_sets(self, service_id: int) -> Deferred:
        """
        The parameter sets of one offered service, from its provider.

        :param service_id: the ServiceID of ServiceDetailReq.
        :returns: a ``Deferred`` firing with a new ``list`` of EVerest
            ``ParameterSet`` dicts, checked by
            :func:`~evsev2g.vas_types.check_parameter_sets` and cut by
            :func:`~evsev2g.vas_types.fit_for_ev_decoders` (possibly empty:
            ServiceDetailRes then carries no ServiceParameterList), or
            failing with :class:`~evsev2g.errors.ServiceUnavailable`: no
            provider offers ``service_id`` (``unknown`` is ``True``), or its
            provider raised, answered with the wrong shape or not within
            :data:`DETAIL_TIMEOUT` seconds (each logged with the provider's
            name).
        """
        record = self._table.get(service_id)
        if record is None:
            return fail(ServiceUnavailable(service_id, "no value-added service offers it", unknown=True))
        state = self._states[id(record.provider)]
        asked = self._ask(state, "get_service_parameters", service_id)
        asked.addCallback(check_parameter_sets, service_id)

        def fitted(sets: list[dict]) -> list[dict]:
            sets, notes = fit_for_ev_decoders(sets)
            for note in notes:
                self.log.warn("value-added service {provider} service {service_id}: {note}", provider=state.name, service_id=service_id, note=note)
            return sets

        asked.addCallback(fitted)

        def unavailable(failure: Failure) -> None:
            reason = self._report(state.name, f"get_service_parameters({service_id})", failure, "ServiceDetail fails")
            raise ServiceUnavailable(service_id, f"{state.name} {reason}")

        asked.addErrback(unavailable)
        return asked

    # -- PaymentServiceSelection ---------------------------------------------------

    def select(self, selected_services: Iterable[Any]) -> Deferred:
        """
        Tell each provider which of its services the EV selected: one
        ``selected_services`` call per provider that has any, with its
        entries in the EV's order.

        Entries for ServiceIDs no provider offers (the charge service, the
        SECC's own Certificate service) are not handed on.  A provider that
        raises, fails or does not answer in time is logged by name; the EV's
        selection stands.

        :param selected_services: EVerest ``SelectedService`` dicts
            (``service_id``, ``parameter_set_id``; the latter missing or
            ``None`` when the EV named no set, which providers see as ``0``),
            at most :data:`~evsev2g.vas_types.SELECTED_SERVICES_MAX`.
        :returns: a ``Deferred`` firing ``None`` once every provider told
            has answered, failed or timed out; it never fails.
        """
        try:
            entries = [check_selected_service(entry) for entry in list(selected_services)[: SELECTED_SERVICES_MAX + 1]]
            if len(entries) > SELECTED_SERVICES_MAX:
                raise ShapeError(f"more than {SELECTED_SERVICES_MAX} selected services")
        except (ShapeError, TypeError) as error:
            self.log.error("selected value-added services not handed on: {error}", error=str(error))
            return succeed(None)
        groups: dict[int, tuple[_ProviderState, list[dict]]] = {}
        for entry in entries:
            record = self._table.get(entry["service_id"])
            if record is None:
                if entry["service_id"] != CHARGE_SERVICE_ID:
                    self.log.debug("selected service {service_id} belongs to no value-added service", service_id=entry["service_id"])
                continue
            state = self._states[id(record.provider)]
            groups.setdefault(id(state.provider), (state, []))[1].append(entry)
        told = []
        for state, chosen in groups.values():
            answer = self._ask(state, "selected_services", chosen)
            answer.addErrback(lambda failure, name=state.name: self._report(name, "selected_services", failure, "the selection stands"))
            told.append(answer)
        if not told:
            return succeed(None)
        return txaio.gather(told, consume_exceptions=True).addCallback(lambda _: None)

    # -- calling providers ---------------------------------------------------------

    def _ask(self, state: _ProviderState, method: str, *args: Any) -> Deferred:
        """
        Call ``method`` of a provider; whatever it gives, a ``Deferred``.

        :returns: a ``Deferred`` firing with the provider's result, or
            failing with what it raised or failed with, or with
            ``TimeoutError`` after ``timeouts[method]`` seconds.  The provider's
            own ``Deferred`` is never cancelled; an answer after the timeout
            is logged and dropped.
        """
        outcome = txaio.create_future()

        def settle(result: Any) -> None:
            if txaio.is_called(outcome):
                late = "failed" if isinstance(result, Failure) else "answered"
                self.log.warn("value-added service {provider} {late} {method} after the timeout; dropped", provider=state.name, late=late, method=method)
            elif isinstance(result, Failure):
                txaio.reject(outcome, result)
            else:
                txaio.resolve(outcome, result)

        called = txaio.as_future(getattr(state.provider, method), *args)
        txaio.add_callbacks(called, _settle_asyncio, None)
        txaio.add_callbacks(called, settle, settle)
        if not txaio.is_called(outcome):

            def expire() -> None:
                if not txaio.is_called(outcome):
                    txaio.reject(outcome, TimeoutError(f"no answer within {limit:g} s"))

            limit = self.timeouts[method]
            timer = self.clock.callLater(limit, expire)

            def stop_timer(result: Any) -> Any:
                if timer.active():
                    timer.cancel()
                return result

            outcome.addBoth(stop_timer)
        return outcome

    def _report(self, name: str, method: str, failure: Failure, consequence: str) -> str:
        """
        Log a provider's failure by name and say in a few words what it was
        (with the traceback the first time a provider raises it).

        :returns: the few words (``"answered the wrong shape: …"``).
        """
        if failure.check(ShapeError):
            reason = f"answered the wrong shape: {failure.value}"
        elif failure.check(TimeoutError):
            reason = f"did not answer: {failure.value}"
        else:
            reason = f"raised {failure.type.__name__}: {failure.getErrorMessage()}"
        traced = f"{name} {method} {reason}"
        if failure.check(ShapeError, TimeoutError) or traced in self._warned:
            self.log.error("value-added service {provider} {method} {reason}; {consequence}", provider=name, method=method, reason=reason, consequence=consequence)
        else:
            # the traceback once per provider, method and error; one line after
            self._warned.add(traced)
            self.log.failure("value-added service {provider} {method} {reason}; {consequence}", failure, provider=name, method=method, reason=reason, consequence=consequence)
        return reason
