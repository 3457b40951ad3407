"""
Drop-in package for evsev2g plugins (``twisted.plugin``).

Protocol-version plugins (:class:`evsev2g.interfaces.IProtocolVersion`) and
value-added-service providers (:class:`evsev2g.interfaces.IValueAddedService`)
are module-level objects that also provide ``twisted.plugin.IPlugin``, in
modules of this package or of any ``evsev2g/plugins`` directory (without
``__init__.py``) on ``sys.path``: the path below is extended with those, so
a separately installed distribution can add plugins without touching ours.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list[str] = []
