"""
``python -m evsev2g demo``: a whole charging session on this machine,
nothing else needed — DIN SPEC 70121 DC by default, or ISO 15118-2 AC or DC
with ``--protocol iso15118-2 --mode ac|dc``, over TLS with ``--tls`` (a
throw-away test PKI in a temporary directory), with a pause and resume
with ``--pause``, Plug & Charge with ``--pnc`` (ISO 15118-2 over TLS; the
EV has its contract certificate installed by the simulated backend first,
unless ``--with-contract``).

It starts the SECC (the real service: TCP or TLS server, sessions, EXI
codec, state machine) with the simulated charger on ``::1``, runs the EV
simulator against it and shows the session as it runs: the EV's progress
and what the SECC tells the charger.  Exit status 0 after a clean session.

The real service runs under twistd: ``twistd -n evsev2g --config FILE``.
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main", "demo"]

#: Charger vars the demo shows as they are published (the rest is noise).
SHOWN_VARS = (
    "evcc_id",
    "selected_payment_option",
    "require_auth_eim",
    "requested_energy_transfer_mode",
    "start_cable_check",
    "start_pre_charge",
    "v2g_setup_finished",
    "current_demand_started",
    "current_demand_finished",
    "dc_open_contactor",
    "hlc_session_failed",
    "dlink_terminate",
    "dlink_error",
    "ac_close_contactor",
    "ac_open_contactor",
    "dlink_pause",
    "selected_service_parameters",
    "require_auth_pnc",
    "iso15118_certificate_request",
)


class ChargerEcho:
    """Shows the vars the SECC publishes to the (simulated) charger."""

    def __init__(self, out, started: float) -> None:
        """
        :param out: a text stream.
        :param started: ``time.monotonic()`` at the start, for time stamps.
        """
        self.out = out
        self.started = started

    def attach(self, backend) -> None:
        """Subscribe to every session's charger the backend is handed."""
        original = backend.session_started

        def session_started(charger) -> None:
            original(charger)
            charger.subscribe(self._show, names=SHOWN_VARS)

        backend.session_started = session_started

    def _show(self, name: str, payload) -> None:
        detail = "" if payload is None else f" {payload}"
        if len(detail) > 160:  # a certificate chain or an EXI request: the start says enough
            detail = detail[:157] + "..."
        self.out.write(f"{time.monotonic() - self.started:6.2f} s  SECC → charger: {name}{detail}\n")
        self.out.flush()


def demo(arguments) -> int:
    """
    Run the demo.

    :param arguments: the parsed command line.
    :returns: the exit status.
    """
    from twisted.internet import reactor
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner, textFileLogObserver

    from evsev2g.sim.ev import EVResult, EVSettings, ProgressPrinter, run_ev
    from evsev2g.sim.loopback import start_secc

    out = sys.stdout
    level = LogLevel.info if arguments.verbose or arguments.xml else LogLevel.warn
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(defaultLogLevel=level)])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    started = time.monotonic()
    iso = arguments.protocol == "iso15118-2"
    if arguments.pnc:
        arguments.protocol, arguments.tls, iso = "iso15118-2", True, True
    if not iso and (arguments.mode == "ac" or arguments.tls or arguments.pause or arguments.charger_pause):
        sys.stderr.write(
            "evsev2g demo: --mode ac, --tls, --pause and --charger-pause need --protocol iso15118-2 (DIN 70121 is DC over TCP, no pause)\n"
        )
        return 2
    overrides = [
        f"simulator.auth_delay_ms={arguments.auth_delay_ms}",
        "simulator.cable_check_ms=1000",
        f"simulator.mode={arguments.mode}",
    ]
    if arguments.xml:
        overrides.append("log_v2g_messages=true")
    if arguments.charger_pause:
        overrides.append("simulator.pause_after_ms=2000")
    if arguments.charger_stop:
        overrides.append("simulator.stop_after_ms=2000")
    v2g_root = None
    temporary = None
    ev_certs = None
    if arguments.tls:
        import tempfile

        from evsev2g.pki import create_test_pki
        from evsev2g.security import layout

        temporary = tempfile.TemporaryDirectory(prefix="evsev2g-demo-pki-")
        pki = create_test_pki(f"{temporary.name}/certs")
        v2g_root = pki.path(layout.V2G_ROOT)
        overrides += ["tls_security=force", "tls_port=0", f"certs_dir={pki.directory}"]
        out.write(f"Throw-away test PKI in {pki.directory} (removed at the end)\n")
        if arguments.pnc:
            overrides += ["verify_contract_cert_chain=true", "simulator.pnc=true"]
            from evsev2g.sim.ev_pnc import ev_directory

            ev_certs = str(ev_directory(pki.directory, f"{temporary.name}/ev", arguments.with_contract))
    try:
        secc = start_secc(reactor, overrides)
    except Exception as error:  # configuration or port problems: one line
        sys.stderr.write(f"evsev2g demo: cannot start the SECC: {error}\n")
        return 1
    ChargerEcho(out, started).attach(secc.sessions.backend)
    out.write(f"SECC with the simulated charger listening on [{secc.host}]:{secc.port} ({'TLS' if arguments.tls else 'TCP'})\n")
    settings = EVSettings(
        host=secc.host,
        port=secc.port,
        start_soc=arguments.start_soc,
        target_soc=arguments.target_soc,
        capacity_wh=arguments.capacity,
        max_current=125.0,
        max_power=50000.0,
        protocol=arguments.protocol,
        mode=arguments.mode,
        tls=arguments.tls,
        v2g_root=v2g_root,
        pnc=arguments.pnc,
        certs_dir=ev_certs,
        pause_after=10 if arguments.pause else 0,
        pause_seconds=1.0,
        on_stop_charging="pause" if arguments.charger_pause else "terminate",
        current_demand_interval=0.1 if iso and arguments.mode == "ac" else 0.05,
    )
    outcome: list[EVResult] = []

    def finished(result: EVResult) -> None:
        outcome.append(result)
        secc.service.stopService().addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(lambda: run_ev(reactor, settings, ProgressPrinter(out, prefix=" EV")).addCallback(finished))
    reactor.run()
    result = outcome[0] if outcome else EVResult(1, "interrupted")
    if temporary is not None:
        temporary.cleanup()
    for version, cipher in result.tls:
        out.write(f"TLS: {version}, {cipher}\n")
    for code, session_id in (result.session_setups if iso else ()):
        out.write(f"SessionSetup: {code}, SessionID {session_id.hex()}\n")
    for name in ("CurrentDemandRes", "ChargingStatusRes"):
        latency = result.latencies.get(name, [])
        if latency:
            ordered = sorted(latency)
            out.write(
                f"{name} latency seen by the EV: median {ordered[len(ordered) // 2] * 1000:.2f} ms,"
                f" max {ordered[-1] * 1000:.2f} ms over {len(ordered)} requests\n"
            )
    if arguments.pnc and result.code == 0:
        out.write("Plug & Charge: contract certificate installed by the simulated backend, then PaymentDetails and a signed AuthorizationReq\n"
                  if not arguments.with_contract else "Plug & Charge: the EV's contract, PaymentDetails and a signed AuthorizationReq\n")
    out.write(f"Session {'OK' if result.code == 0 else 'FAILED'}: {result.reason}; {result.energy_wh / 1000.0:.3f} kWh delivered\n")
    out.flush()
    return result.code


def main(argv=None) -> int:
    """
    The command line of ``python -m evsev2g``.

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m evsev2g", description="A whole charging session on this machine: python -m evsev2g demo (demo --help lists its options).")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="SECC + simulated charger + EV simulator on ::1, one whole session (DIN DC by default)")
    run.add_argument("--protocol", choices=("din70121", "iso15118-2"), default="din70121", help="(default %(default)s)")
    run.add_argument("--mode", choices=("dc", "ac"), default="dc", help="energy transfer, AC needs iso15118-2 (default %(default)s)")
    run.add_argument("--tls", action="store_true", help="ISO 15118-2 over TLS 1.2 with a throw-away test PKI")
    run.add_argument("--pnc", action="store_true", help="Plug & Charge: ISO 15118-2 over TLS, Contract payment; the EV installs its contract first")
    run.add_argument("--with-contract", action="store_true", help="with --pnc: the EV already holds a contract certificate")
    run.add_argument("--pause", action="store_true", help="the EV pauses after 10 loop requests and resumes with its SessionID")
    run.add_argument("--charger-pause", action="store_true", help="the charger pauses 2 s into charging; the EV pauses and resumes (ISO-2)")
    run.add_argument("--charger-stop", action="store_true", help="the charger stops charging 2 s into charging (exit 3: the charger stopped)")
    run.add_argument("--start-soc", type=float, default=60.0, help="EV SoC at plug-in, %% (default %(default)s)")
    run.add_argument("--target-soc", type=float, default=80.0, help="EV stops at this SoC, %% (default %(default)s)")
    run.add_argument("--capacity", type=float, default=500.0, help="EV battery capacity in Wh, small for a short demo (default %(default)s)")
    run.add_argument("--auth-delay-ms", type=int, default=1000, help="simulated EIM authorization delay (default %(default)s)")
    run.add_argument("--xml", action="store_true", help="log every V2G message as XML (to stderr)")
    run.add_argument("--verbose", "-v", action="store_true", help="log SECC info lines to stderr")
    arguments = parser.parse_args(argv)
    return demo(arguments)


if __name__ == "__main__":
    sys.exit(main())
