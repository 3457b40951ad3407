"""
The EV simulator: ``python -m evsev2g.sim.ev``.

It finds the SECC with SDP (or is given ``--host/--port``), negotiates DIN
SPEC 70121 or ISO 15118-2 in supportedAppProtocol and runs a whole session
as an EV would: DIN DC (:mod:`evsev2g.sim.ev_din`), or ISO 15118-2 AC or DC
with external identification, over TCP or TLS, with pause and resume,
renegotiation and a value-added service (:mod:`evsev2g.sim.ev_iso2`).

It prints its progress (state, SoC, voltage, current, energy) and exits 0
after a clean session, or non-zero with the reason (codes in
:mod:`evsev2g.sim.ev_settings`): 1 discovery, connection, TLS or timeout;
2 FAILED; 3 the charger stopped; 4 no protocol agreed.

From Python: :func:`run_ev` returns a ``Deferred`` firing with an
:class:`EVResult`; :class:`EVSettings` holds the knobs.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from twisted.internet.defer import Deferred, ensureDeferred

from evsev2g.sim.ev_session import SimulatedEV
from evsev2g.sim.ev_settings import EVResult, EVSettings, EVStop

__all__ = ["EVSettings", "EVResult", "EVStop", "SimulatedEV", "run_ev", "load_ev_codecs", "main"]


def load_ev_codecs(protocol: str = "din70121"):
    """
    :param protocol: ``din70121`` or ``iso15118-2``.
    :returns: ``(handshake codec, protocol codec)`` from :mod:`evsev2g.exi`.
    """
    from evsev2g.exi import load_codec

    return load_codec("appHandshake"), load_codec(protocol)


def run_ev(reactor, settings: EVSettings, progress: Callable[[dict], None] = lambda report: None, codecs=None) -> Deferred:
    """
    Run one simulated EV session.

    :param reactor: the reactor.
    :param settings: :class:`EVSettings`.
    :param progress: called with ``{"state", "soc", "voltage", "current",
        "energy_wh"}`` at every step.
    :param codecs: ``(handshake codec, protocol codec)``; loaded when ``None``.
    :returns: a ``Deferred`` firing with an :class:`EVResult` (never failing
        for session problems; those are in the result).
    """
    ev = SimulatedEV(reactor, settings, codecs or load_ev_codecs(settings.protocol), progress)
    return ensureDeferred(ev.run()).addErrback(
        lambda failure: EVResult(1, f"EV simulator error: {failure.type.__name__}: {failure.getErrorMessage()}", ev.soc, ev.energy_wh, ev.latencies, ev.states)
    )


class ProgressPrinter:
    """Prints a line per state and about one per second while charging."""

    def __init__(self, out=sys.stdout, prefix: str = "EV", every: float = 1.0) -> None:
        """
        :param out: a text stream.
        :param prefix: the line prefix.
        :param every: seconds between lines within one state.
        """
        self.out = out
        self.prefix = prefix
        self.every = every
        self._state = None
        self._printed = 0.0

    def __call__(self, report: dict) -> None:
        """Print a progress line on a new state, else at most every ``every`` seconds."""
        now = time.monotonic()
        if report["state"] == self._state and now - self._printed < self.every:
            return
        self._state = report["state"]
        self._printed = now
        self.out.write(
            f"{self.prefix} {report['state']:<18} SoC {report['soc']:5.1f} %  {report['voltage']:6.1f} V"
            f"  {report['current']:6.1f} A  {report['energy_wh'] / 1000.0:7.3f} kWh\n"
        )
        self.out.flush()


def _parser() -> argparse.ArgumentParser:
    defaults = EVSettings()
    parser = argparse.ArgumentParser(prog="python -m evsev2g.sim.ev", description="Simulated EV: DIN SPEC 70121 DC, ISO 15118-2 AC or DC (EIM).")
    where = parser.add_argument_group("where the SECC is")
    where.add_argument("--host", help="SECC address (skips SDP); link-local addresses need %%interface")
    where.add_argument("--port", type=int, default=defaults.port, help="SECC TCP port with --host (default %(default)s)")
    where.add_argument("--interface", "-i", help="network interface for SDP discovery")
    where.add_argument("--sdp-port", type=int, default=defaults.sdp_port, help="SECC SDP port (default %(default)s)")
    how = parser.add_argument_group("the protocol")
    how.add_argument("--protocol", choices=("din70121", "iso15118-2"), default=defaults.protocol, help="(default %(default)s)")
    how.add_argument("--mode", choices=("dc", "ac"), default=defaults.mode, help="energy transfer, ISO 15118-2 only (default %(default)s)")
    how.add_argument("--tls", action="store_true", help="ask for TLS in SDP and connect with TLS 1.2 (ISO 15118-2)")
    how.add_argument("--v2g-root", help="V2G root certificate (PEM) the SECC's chain must lead to (without it: any chain)")
    how.add_argument("--pause-after", type=int, default=0, help="pause after this many ChargingStatus/CurrentDemand requests, then resume (0: never)")
    how.add_argument("--pause-seconds", type=float, default=defaults.pause_seconds, help="s paused before resuming (default %(default)s)")
    how.add_argument("--no-resume", action="store_true", help="end after the pause instead of resuming")
    how.add_argument("--renegotiate-after", type=int, default=0, help="PowerDelivery(Renegotiate) after this many loop requests (0: never)")
    how.add_argument("--on-stop-charging", choices=("terminate", "pause"), default="terminate", help="answer to EVSENotification StopCharging (default %(default)s)")
    how.add_argument("--service", type=int, help="choose this value-added service (ServiceID), e.g. 3 for Internet access")
    how.add_argument("--parameter-set", type=int, help="its ParameterSetID (default: the first offered)")
    how.add_argument("--pnc", action="store_true", help="Plug & Charge instead of EIM (ISO 15118-2 over TLS)")
    how.add_argument("--certs-dir", help="the EV's certificate directory for --pnc (contract and OEM files)")
    ev = parser.add_argument_group("the EV")
    ev.add_argument("--start-soc", type=float, default=defaults.start_soc, help="SoC at plug-in, %% (default %(default)s)")
    ev.add_argument("--target-soc", type=float, default=defaults.target_soc, help="stop at this SoC, %% (default %(default)s)")
    ev.add_argument("--capacity", type=float, default=defaults.capacity_wh, help="battery capacity, Wh (default %(default)s)")
    ev.add_argument("--max-current", type=float, default=defaults.max_current, help="A (default %(default)s)")
    ev.add_argument("--max-voltage", type=float, default=defaults.max_voltage, help="V (default %(default)s)")
    ev.add_argument("--max-power", type=float, default=defaults.max_power, help="W (default %(default)s)")
    ev.add_argument("--ac-max-current", type=float, default=defaults.ac_max_current, help="A per phase, AC (default %(default)s)")
    ev.add_argument("--interval", type=float, default=defaults.current_demand_interval, help="s between CurrentDemand/ChargingStatus requests (default %(default)s)")
    ev.add_argument("--current-demands", type=int, default=0, help="stop after this many CurrentDemand/ChargingStatus requests (0: at the target SoC)")
    ev.add_argument("--msg-timeout", type=float, default=defaults.msg_timeout, help="s to wait for a response (default %(default)s, V2G_EVCC_Msg_Timeout)")
    ev.add_argument("--loop-timeout", type=float, default=defaults.current_demand_timeout,
                    help="s to wait for CurrentDemandRes (default %(default)s)")
    ev.add_argument("--evcc-id", default=defaults.evcc_id.hex(), help="EVCCID, 12 hex digits (default %(default)s)")
    ev.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    return parser


def settings_from_arguments(arguments) -> EVSettings:
    """:returns: the :class:`EVSettings` the parsed command line asks for."""
    return EVSettings(
        host=arguments.host,
        port=arguments.port,
        interface=arguments.interface,
        sdp_port=arguments.sdp_port,
        start_soc=arguments.start_soc,
        target_soc=arguments.target_soc,
        capacity_wh=arguments.capacity,
        max_current=arguments.max_current,
        max_voltage=arguments.max_voltage,
        max_power=arguments.max_power,
        ac_max_current=arguments.ac_max_current,
        current_demand_interval=arguments.interval,
        max_current_demands=arguments.current_demands,
        evcc_id=bytes.fromhex(arguments.evcc_id),
        msg_timeout=arguments.msg_timeout,
        current_demand_timeout=arguments.loop_timeout,
        protocol=arguments.protocol,
        mode=arguments.mode,
        tls=arguments.tls,
        v2g_root=arguments.v2g_root,
        pause_after=arguments.pause_after,
        pause_seconds=arguments.pause_seconds,
        resume=not arguments.no_resume,
        renegotiate_after=arguments.renegotiate_after,
        on_stop_charging=arguments.on_stop_charging,
        service_id=arguments.service,
        parameter_set_id=arguments.parameter_set,
        pnc=arguments.pnc,
        certs_dir=arguments.certs_dir,
    )


def main(argv=None) -> int:
    """
    The command line.

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the exit status.
    """
    arguments = _parser().parse_args(argv)
    if arguments.host is None and arguments.interface is None:
        _parser().error("give --interface for SDP discovery, or --host/--port")
    try:
        settings = settings_from_arguments(arguments)
    except ValueError as error:
        _parser().error(str(error))
    from twisted.internet import reactor

    outcome: list[EVResult] = []
    progress = (lambda report: None) if arguments.quiet else ProgressPrinter()

    def finish(result: EVResult) -> None:
        outcome.append(result)
        reactor.stop()

    reactor.callWhenRunning(lambda: run_ev(reactor, settings, progress).addCallback(finish))
    reactor.run()
    result = outcome[0] if outcome else EVResult(1, "interrupted")
    stream = sys.stdout if result.code == 0 else sys.stderr
    for code, session_id in result.session_setups:
        stream.write(f"EV SessionSetup: {code}, SessionID {session_id.hex()}\n")
    for version, cipher in result.tls:
        stream.write(f"EV TLS: {version}, {cipher}\n")
    for service_id, parameter_set_id in result.selected_services:
        stream.write(f"EV chose service {service_id}, parameter set {parameter_set_id}\n")
    stream.write(f"EV result: {result.reason} (exit {result.code}; {result.energy_wh / 1000.0:.3f} kWh)\n")
    stream.flush()
    return result.code


if __name__ == "__main__":
    sys.exit(main())
