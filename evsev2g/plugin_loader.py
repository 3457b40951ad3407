"""
One loader for every kind of evsev2g plugin.

Protocol-version plugins (:class:`~evsev2g.interfaces.IProtocolVersion`),
value-added-service providers (:class:`~evsev2g.interfaces.IValueAddedService`)
and charger backends (:class:`~evsev2g.interfaces.IChargerBackendFactory`)
are module-level objects that also provide ``twisted.plugin.IPlugin``, in a
module of the :mod:`evsev2g.plugins` drop-in package (or of any
``evsev2g/plugins`` directory on ``sys.path``).  Each is found with
``twisted.plugin.getPlugins`` and checked with ``verifyObject`` against its
interface; a plugin that fails the check, or whose module cannot even be
imported, is reported by name and left out, and never takes the service down.
"""

from __future__ import annotations

from typing import Callable, Hashable

from twisted.logger import Logger
from twisted.plugin import IPlugin
from twisted.python.modules import getModule
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

__all__ = ["load_plugins", "plugin_label"]

_log = Logger()


def plugin_label(plugin) -> str:
    """
    :param plugin: a plugin object.
    :returns: the name it is reported by: its ``name`` attribute when it has
        a string one, else its ``repr``.
    """
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) and name else repr(plugin)


def load_plugins(
    interface,
    kind: str,
    package=None,
    key: Callable[[object], Hashable] | None = None,
    log: Logger = _log,
) -> list[object]:
    """
    Every plugin providing ``interface`` that passes ``verifyObject``.

    :param interface: the zope interface the plugins provide.
    :param kind: what they are, for the log (``"protocol"``, ``"value-added
        service"``, ``"backend"``).
    :param package: the drop-in package (default :mod:`evsev2g.plugins`).
    :param key: when given, plugins with an equal ``key(plugin)`` are
        duplicates: the first found wins and the others are logged.
    :param log: where broken and duplicate plugins are reported.
    :returns: a ``list`` of the plugins, in the order found.
    """
    if package is None:
        import evsev2g.plugins as package
    found = []
    seen = set()
    for plugin in _plugins(interface, kind, package, log):
        label = plugin_label(plugin)
        try:
            verifyObject(interface, plugin)
            identity = key(plugin) if key is not None else None
        except (Invalid, Exception) as error:
            log.error("{kind} plugin {plugin} is broken and skipped: {error}", kind=kind, plugin=label, error=str(error).strip() or type(error).__name__)
            continue
        if key is not None:
            if identity in seen:
                log.warn("{kind} plugin {plugin} duplicates {identity!r}; skipped", kind=kind, plugin=label, identity=identity)
                continue
            seen.add(identity)
        found.append(plugin)
    return found


def _plugins(interface, kind: str, package, log: Logger):
    """
    The objects providing ``IPlugin`` and adaptable to ``interface`` in the
    modules of ``package``, each once, in module order; a module that fails
    to import is logged by name and skipped.
    """
    yielded = set()
    for module in getModule(package.__name__).iterModules():
        try:
            loaded = module.load()
        except Exception as error:  # noqa: BLE001 - anything a drop-in raises at import
            log.error(
                "{kind} plugin module {module} ({path}) cannot be imported and is skipped: {error}",
                kind=kind,
                module=module.name,
                path=module.filePath.path,
                error=f"{type(error).__name__}: {error}",
            )
            continue
        for value in list(vars(loaded).values()):
            if id(value) in yielded or not IPlugin.providedBy(value):
                continue
            try:
                adapted = interface(value, None)
            except Exception as error:  # noqa: BLE001 - a plugin's __conform__ may raise
                log.error("{kind} plugin {plugin} is broken and skipped: {error}", kind=kind, plugin=plugin_label(value), error=str(error) or type(error).__name__)
                continue
            if adapted is not None:
                yielded.add(id(value))
                yield adapted
