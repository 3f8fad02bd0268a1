"""minins: a Linux container runtime in pure Python.

The public API is importable from here; modules load on first use so that ``import minins``
stays cheap for the command line.

    >>> import minins
    >>> cfg = minins.default_config()
    >>> minins.run(cfg, ["/bin/true"])
    0

See README.md for the library API and vendor-notes.md for vendoring.
"""
from .errors import ConfigError, ContainerError, MininsError, StateError, SyscallError

__version__ = "0.1.0"
#: the runtime-spec version minins implements (runc 1.1 says 1.0.2-dev): ociVersion of the
#: OCI state, ``--version``, ``features``
OCI_VERSION = "1.0.2"

_LAZY = {
    # ID mapping and exit status (pure)
    "IDMap": "idmap",
    "host_id_from_mapping": "idmap",
    "container_id_from_mapping": "idmap",
    "get_host_root_uid": "idmap",
    "get_host_root_gid": "idmap",
    "exit_code_from_status": "exitstatus",
    # configuration
    "Config": "config",
    "load_config": ("config", "load"),
    "loads_config": ("config", "loads"),
    "dumps_config": ("config", "dumps"),
    "default_config": "config",
    "validate_config": ("config", "validate"),
    # containers
    "run": "container",
    "Container": "container",
    "load_state": ("state", "load"),
    # running containers
    "exec_in": "execin",
}

# Submodules the README names as ``minins.lifecycle.describe``, ``minins.execin.exec_in``,
# ``minins.config.rootless``...: reachable after a plain ``import minins``, loaded on first use.
_SUBMODULES = ("cgroups", "config", "execin", "lifecycle", "network", "netlink", "state",
               "console", "idmap", "exitstatus")

__all__ = sorted(_LAZY) + ["ConfigError", "ContainerError", "MininsError", "StateError",
                           "SyscallError"]


def _submodule(name):
    # __import__, not importlib.import_module: ``from . import x`` asks this module's
    # __getattr__ first, and the importlib package (with warnings) costs a start ~1 ms
    import sys

    __import__(__name__ + "." + name)
    return sys.modules[__name__ + "." + name]  # the import also set globals()[name]


def __getattr__(name):
    if name in _SUBMODULES:
        return _submodule(name)
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError("module 'minins' has no attribute %r" % name)
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(_submodule(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__ + list(_SUBMODULES)
