"""
ISO 15118-2:2013 (namespace ``urn:iso:15118:2:2013:MsgDef``), AC and DC,
split by message group:

- :mod:`~evsev2g.protocols.iso15118_2.states`: states and allowed requests;
- :mod:`~evsev2g.protocols.iso15118_2.services`: SessionSetup, services,
  PaymentServiceSelection, SessionStop (pause);
- :mod:`~evsev2g.protocols.iso15118_2.authorization`: Authorization and
  ChargeParameterDiscovery;
- :mod:`~evsev2g.protocols.iso15118_2.ac`: AC contactor, ChargingStatus,
  MeteringReceipt (the DC steps are :mod:`evsev2g.protocols.dc`, shared with DIN);
- :mod:`~evsev2g.protocols.iso15118_2.machine`: the state machine that ties
  them (PowerDelivery, notifications);
- :mod:`~evsev2g.protocols.iso15118_2.bodies`: response bodies;
- :mod:`~evsev2g.protocols.iso15118_2.contract`: where Plug & Charge plugs in.

The plugin object is :class:`evsev2g.plugins.evsev2g_protocols.ISO15118_2Version`.
"""

from evsev2g.protocols.iso15118_2.machine import ISO2_NAMESPACE, ISO2StateMachine
from evsev2g.protocols.iso15118_2.states import ALLOWED_AC, ALLOWED_DC, REQUESTS, State

__all__ = ["ISO2_NAMESPACE", "ISO2StateMachine", "State", "REQUESTS", "ALLOWED_AC", "ALLOWED_DC"]
