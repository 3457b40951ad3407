"""
Simulators: the charger behind the seam (:mod:`evsev2g.sim.charger`), the
EV (``python -m evsev2g.sim.ev``, with its own SDP and V2GTP client in
:mod:`evsev2g.sim.ev_link`) and an SECC with the simulated charger in this
process (:mod:`evsev2g.sim.loopback`).
"""
