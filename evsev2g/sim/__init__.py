"""
Simulators: the charger behind the seam (:mod:`evsev2g.sim.charger`) and,
later, the EV (``python -m evsev2g.sim.ev``).
"""
