"""
Protocol-version plugins and their state machines.

:mod:`~evsev2g.protocols.apphandshake` negotiates the protocol among the
registered :class:`evsev2g.interfaces.IProtocolVersion` plugins;
:mod:`~evsev2g.protocols.din70121` is the DIN SPEC 70121 DC state machine,
:mod:`~evsev2g.protocols.iso15118_2` the ISO 15118-2 one; both are built on
:mod:`~evsev2g.protocols.base` (dispatch, Ongoing waits, FAILED handling)
and share the DC steps of :mod:`~evsev2g.protocols.dc`.
State machines are plain objects: request message in, reply out, time from
an injected clock.  They know nothing of sockets or EXI bytes.
"""
