"""
Simulators: the charger behind the seam (:mod:`evsev2g.sim.charger`, AC or
DC), the EV (``python -m evsev2g.sim.ev``: settings and results in
:mod:`~evsev2g.sim.ev_settings`, the session core in
:mod:`~evsev2g.sim.ev_session`, the DIN 70121 and ISO 15118-2 flows in
:mod:`~evsev2g.sim.ev_din` and :mod:`~evsev2g.sim.ev_iso2` with their
shared DC steps in :mod:`~evsev2g.sim.ev_dc`, its own SDP, V2GTP and TLS
client in :mod:`~evsev2g.sim.ev_link`) and an SECC with the simulated
charger in this process (:mod:`evsev2g.sim.loopback`).
"""
