"""
Drive Josev's EVCC (``pip install iso15118``, an independent Python ISO 15118
stack with its own EXI codec, EXIficient in Java) for one V2G session and
report what happened as JSON.

This script runs in Josev's own virtualenv, never in ours: it imports
``iso15118`` and nothing of evsev2g.  It only configures and observes Josev;
the protocol is Josev's own.  What it adds:

- the protocols are offered in the order given (Josev's own configuration
  loader puts them through a ``set`` and loses the order, so a
  "priority" test would otherwise depend on the hash seed);
- ``--stop-after-parameters`` makes the EV send SessionStopReq right after
  ChargeParameterDiscovery instead of CableCheckReq (a real car did this,
  and DIN allows it);
- ``--drop-after N`` makes the EV drop the TCP connection after the N-th
  CurrentDemandRes (an EV unplugged or crashing mid-charge);
- the end of the session (Josev's ``StopNotification``) ends the process:
  Josev itself keeps running after a failed session.

Usage (inside the EV's network namespace)::

    josev-venv/bin/python josev_evcc.py --interface veth0 --result out.json \\
        [--protocols DIN_SPEC_70121,ISO_15118_2] [--mode DC_extended] [--tls] [--loops 10] [--timeout 60]

The result file holds one JSON object:

``successful``
    Josev's own verdict (``StopNotification.successful``); ``None`` on timeout.
``reason``
    Josev's stop reason, or ``"timeout"``.
``protocol``
    the protocol Josev says was chosen, or ``None``.
``sdp_security``
    ``"TLS"`` or ``"NO_TLS"`` as the SDP response said, or ``None``.
``sent`` / ``received``
    message names in order (Josev's "Sent X" / "X received" log lines).
``response_codes``
    ``[name, ResponseCode]`` of every decoded response.
``tls``
    ``[version, cipher]`` of Josev's TLS connection, or ``None`` without TLS.
``notifications``
    EVSENotification values other than ``None`` in decoded responses.
``services``
    ``[ServiceID, ServiceName]`` of the ServiceList in the decoded
    ServiceDiscoveryRes (value-added services offered), or ``[]``.

Exit status: 0 when Josev reports a successful session, 1 when it reports
a failed one, 2 on timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys

#: Josev's log lines this script reads (message flow and outcome).
_SENT = re.compile(r"^Sent (\w+)")
_RECEIVED = re.compile(r"^(\w+) received$")
_DECODED = re.compile(r"^Decoded message \(ns=[^)]*\): (\{.*\})$", re.S)
_CHOSEN = re.compile(r"^Chosen protocol: (\S+)")
_SDP = re.compile(r"^SDPResponse received: .*Security: (\w+)")


class Observer(logging.Handler):
    """
    Collects the message flow from Josev's log records.

    :ivar result: the report being built (see the module docstring).
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.result = {
            "successful": None,
            "reason": None,
            "protocol": None,
            "sdp_security": None,
            "sent": [],
            "received": [],
            "response_codes": [],
            "tls": None,
            "notifications": [],
            "services": [],
        }

    def emit(self, record: logging.LogRecord) -> None:
        """:param record: one of Josev's log records."""
        text = record.getMessage()
        result = self.result
        for pattern, key in ((_SENT, "sent"), (_RECEIVED, "received")):
            match = pattern.match(text)
            if match:
                result[key].append(match.group(1))
                return
        match = _DECODED.match(text)
        if match:
            result["response_codes"].extend(_response_codes(match.group(1)))
            result["notifications"].extend(_notifications(match.group(1)))
            result["services"].extend(_services(match.group(1)))
            return
        match = _CHOSEN.match(text)
        if match:
            result["protocol"] = match.group(1)
            return
        match = _SDP.match(text)
        if match:
            result["sdp_security"] = match.group(1)


def _response_codes(decoded: str) -> list:
    """
    :param decoded: Josev's JSON rendering of a decoded message.
    :returns: ``[[name, ResponseCode]]`` for a response, else ``[]``.
    """
    try:
        message = json.loads(decoded)
    except ValueError:
        return []
    if "V2G_Message" in message:
        message = message["V2G_Message"].get("Body", {})
    codes = []
    for name, body in message.items():
        if isinstance(body, dict) and "ResponseCode" in body:
            codes.append([name, body["ResponseCode"]])
    return codes


def _notifications(decoded: str) -> list:
    """:returns: the EVSENotification values but ``None`` anywhere in a decoded message."""
    found = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "EVSENotification" and value != "None":
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    try:
        walk(json.loads(decoded))
    except ValueError:
        pass
    return found


def _services(decoded: str) -> list:
    """:returns: ``[[ServiceID, ServiceName]]`` of a decoded ServiceDiscoveryRes's ServiceList, else ``[]``."""
    try:
        message = json.loads(decoded)
    except ValueError:
        return []
    body = message.get("V2G_Message", {}).get("Body", {})
    listed = body.get("ServiceDiscoveryRes", {}).get("ServiceList") or {}
    services = listed.get("Service", [])
    if isinstance(services, dict):
        services = [services]
    return [[service.get("ServiceID"), service.get("ServiceName")] for service in services]


def watch_tls(observer: "Observer") -> None:
    """Note the TLS version and cipher of Josev's connection (read from its SSL object)."""
    from iso15118.evcc.transport import tcp_client

    original = tcp_client.TCPClient.create

    async def create(*arguments, **named):
        client = await original(*arguments, **named)
        ssl_object = client.writer.get_extra_info("ssl_object") if getattr(client, "writer", None) else None
        if ssl_object is not None:
            observer.result["tls"] = [ssl_object.version(), ssl_object.cipher()[0]]
        return client

    tcp_client.TCPClient.create = staticmethod(create)


def parse_arguments(argv=None) -> argparse.Namespace:
    """:returns: the command line, parsed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interface", required=True, help="network interface towards the SECC")
    parser.add_argument("--result", required=True, help="file the JSON report is written to")
    parser.add_argument(
        "--protocols", default="DIN_SPEC_70121", help="comma-separated Josev protocol names, highest priority first"
    )
    parser.add_argument("--tls", action="store_true", help="ask for TLS in the SDP request")
    parser.add_argument("--cert-install", action="store_true", help="Josev's isCertInstallNeeded: CertificateInstallation first (PnC)")
    parser.add_argument("--mode", default="DC_extended", help="Josev's energyTransferMode (DC_extended, AC_three_phase_core …)")
    parser.add_argument("--loops", type=int, default=10, help="Josev's chargeLoopCycle")
    parser.add_argument("--stop-after-parameters", action="store_true", help="SessionStopReq after ChargeParameterDiscovery")
    parser.add_argument("--drop-after", type=int, default=0, help="drop TCP after this many CurrentDemandRes (0: never)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up")
    return parser.parse_args(argv)


def stop_after_parameters() -> None:
    """Make Josev's DIN EV answer a finished ChargeParameterDiscoveryRes with SessionStopReq."""
    from iso15118.evcc.states import din_spec_states as din
    from iso15118.shared.messages.din_spec.body import SessionStopReq
    from iso15118.shared.messages.din_spec.timeouts import Timeouts

    original = din.ChargeParameterDiscovery.create_next_message

    def create_next_message(self, next_state, next_msg, timeout, namespace, *rest, **named):
        if next_state is din.CableCheck:
            next_state, next_msg, timeout = din.SessionStop, SessionStopReq(), Timeouts.SESSION_STOP_REQ
        return original(self, next_state, next_msg, timeout, namespace, *rest, **named)

    din.ChargeParameterDiscovery.create_next_message = create_next_message


def drop_after(count: int) -> None:
    """Make Josev's DIN EV drop the TCP connection after ``count`` CurrentDemandRes."""
    from iso15118.evcc.states import din_spec_states as din

    original = din.CurrentDemand.process_message
    seen = {"responses": 0}

    async def process_message(self, message, message_exi=None):
        seen["responses"] += 1
        if seen["responses"] >= count:
            self.comm_session.writer.transport.abort()
            raise ConnectionResetError(f"EV drops the connection after {count} CurrentDemandRes (test)")
        return await original(self, message, message_exi)

    din.CurrentDemand.process_message = process_message


class StopWatch(asyncio.Queue):
    """
    Josev's session-handler queue, noticing the session's end.

    :ivar stopped: a future set to the ``StopNotification``.
    """

    def __init__(self) -> None:
        super().__init__(0)
        self.stopped: asyncio.Future = asyncio.get_running_loop().create_future()

    def put_nowait(self, item) -> None:
        """Pass ``item`` on; remember the first ``StopNotification``."""
        from iso15118.shared.notifications import StopNotification

        if isinstance(item, StopNotification) and not self.stopped.done():
            self.stopped.set_result(item)
        super().put_nowait(item)


async def run(arguments: argparse.Namespace, observer: Observer) -> int:
    """
    One EVCC session.

    :returns: the exit status (see the module docstring).
    """
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.messages.enums import Protocol
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings()
    names = [name.strip() for name in arguments.protocols.split(",") if name.strip()]
    config = EVCCConfig(
        supportedProtocols=names,
        energyTransferMode=arguments.mode,
        isCertInstallNeeded=arguments.cert_install,
        useTls=arguments.tls,
        enforceTls=False,
        sdpRetryCycles=1,
        chargeLoopCycle=arguments.loops,
    )
    config.load_raw_values()
    config.supported_protocols = [Protocol[name] for name in names]
    codec = ExificientEXICodec()
    try:
        handler = EVCCHandler(
            evcc_config=config, iface=arguments.interface, exi_codec=codec, ev_controller=SimEVController(config)
        )
        watch = StopWatch()
        handler._rcv_queue = watch
        running = asyncio.ensure_future(handler.start_session_handler())
        try:
            stop = await asyncio.wait_for(asyncio.shield(watch.stopped), arguments.timeout)
        except asyncio.TimeoutError:
            observer.result["reason"] = "timeout"
            return 2
        finally:
            running.cancel()
        observer.result["successful"] = bool(stop.successful)
        observer.result["reason"] = stop.reason
        return 0 if stop.successful else 1
    finally:
        codec.gateway.shutdown()


def main(argv=None) -> int:
    """Run one session and write the report; :returns: the exit status."""
    arguments = parse_arguments(argv)
    os.environ.setdefault("MESSAGE_LOG_JSON", "True")
    import iso15118.shared  # noqa: F401  (sets up Josev's logging)

    observer = Observer()
    logging.getLogger("iso15118").addHandler(observer)
    if arguments.stop_after_parameters:
        stop_after_parameters()
    if arguments.drop_after:
        drop_after(arguments.drop_after)
    if arguments.tls:
        watch_tls(observer)
    status = asyncio.run(run(arguments, observer))
    with open(arguments.result, "w") as out:
        json.dump(observer.result, out, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
