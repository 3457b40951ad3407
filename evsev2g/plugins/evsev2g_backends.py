"""
The charger-backend plugins shipped with evsev2g (the ``backend`` key):
``simulator``, the embedded simulated charger, and ``everest``, the EVerest
module on MQTT.  Another backend is one more module-level object providing
:class:`~evsev2g.interfaces.IChargerBackendFactory` and ``IPlugin`` in a
module of this drop-in package; nothing else changes.
"""

from evsev2g.backends import SimulatorBackendFactory
from evsev2g.everest.factory import EverestBackendFactory

simulator = SimulatorBackendFactory()
everest = EverestBackendFactory()
