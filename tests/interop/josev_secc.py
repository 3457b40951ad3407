"""
Run Josev's SECC (``pip install iso15118``: an independent Python ISO 15118
stack with its own EXI codec, EXIficient in Java) so that our EV simulator
can be checked against a charger we did not write.

This script runs in Josev's own virtualenv, never ours: it imports
``iso15118`` and nothing of evsev2g.  It only configures Josev; the
protocol is Josev's own.  What it adds: Josev's simulated EVSE keeps its
present voltage at 1 V whatever the EV asks, so no EV could finish
pre-charge; here the simulated power supply follows the EV's target voltage
and current, and its current drops to 0 when charging stops, as a
charger's does.

Usage (inside the SECC's network namespace)::

    josev-venv/bin/python josev_secc.py --interface veth0 [--protocols ISO_15118_2]

Environment: Josev's own (``PKI_PATH``, ``LOG_LEVEL`` …).  It runs until
terminated and logs Josev's lines to stdout; "Communication session handler
started" tells it is ready.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


def follow_targets() -> None:
    """Make Josev's simulated power supply present what the EV targets, and no current once stopped."""
    from iso15118.secc.controller.simulator import SimEVSEController

    async def send_charging_command(self, ev_target_voltage, ev_target_current, is_precharge=False, is_session_bpt=False):
        context = self.evse_data_context
        if ev_target_voltage is not None:
            context.present_voltage = ev_target_voltage
        if ev_target_current is not None:
            context.present_current = min(ev_target_current, 2) if is_precharge else ev_target_current

    stop_charger = SimEVSEController.stop_charger

    async def stop_and_drop_current(self, *arguments, **named):
        self.evse_data_context.present_current = 0
        return await stop_charger(self, *arguments, **named)

    SimEVSEController.send_charging_command = send_charging_command
    SimEVSEController.stop_charger = stop_and_drop_current


def main(argv=None) -> int:
    """Start Josev's SECC on the interface; :returns: when it stops."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interface", required=True, help="network interface towards the EV")
    parser.add_argument("--protocols", default="ISO_15118_2", help="Josev's PROTOCOLS (comma-separated)")
    arguments = parser.parse_args(argv)
    os.environ.update(NETWORK_INTERFACE=arguments.interface, PROTOCOLS=arguments.protocols, AUTH_MODES="EIM")
    follow_targets()
    from iso15118.secc.main import main as josev_main

    asyncio.run(josev_main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
