"""
evsev2g as an EVerest module: the MQTT bridge in place of EvseV2G.

- :mod:`evsev2g.everest.mqtt`: paho-mqtt driven by the Twisted reactor.
- :mod:`evsev2g.everest.wire`: EVerest's topics and envelopes (Gen B and C).
- :mod:`evsev2g.everest.module`: an EVerest module (start-up, commands,
  vars, errors, calls).
- :mod:`evsev2g.everest.backend`: the ``everest`` charger backend.
- :mod:`evsev2g.everest.vas`: an ISO15118_vas module as a value-added-service provider.
- :mod:`evsev2g.security.everest`: EvseSecurity as the security provider.
- ``python -m evsev2g.everest`` runs the module; ``… install MODULES_DIR``
  installs it (:mod:`evsev2g.everest.install`).
"""
