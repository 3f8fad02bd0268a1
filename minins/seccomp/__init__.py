"""seccomp: OCI ``linux.seccomp`` profiles compiled to classic BPF in pure Python.

* :mod:`.profile` -- the OCI model, validation, rule precedence (pure);
* :mod:`.tables` -- syscall numbers per architecture, generated from the uapi headers;
* :mod:`.compiler` -- profile + native architecture -> ``struct sock_filter[]`` (pure);
* :mod:`.default` -- Moby's default profile, resolved against capabilities and architecture;
* :mod:`.load` -- the child side: resolve, compile (cached), seccomp(2), the NOTIFY listener.

Nothing here is imported at minins start-up unless a container has a profile.
"""


def option_value(text, option="--seccomp"):
    """The configuration's ``seccomp`` for a command-line value: ``default``, ``unconfined``
    (no filter), or the path of a JSON file holding an OCI ``linux.seccomp`` object."""
    if text in ("default", "unconfined"):
        return None if text == "unconfined" else "default"
    from json import loads
    from ..errors import ConfigError
    from . import profile

    try:
        with open(text, "rb") as f:
            data = loads(f.read())
    except OSError as e:
        raise ConfigError(option, "cannot read %s: %s" % (text, e.strerror)) from None
    except ValueError as e:
        raise ConfigError(option, "%s is not valid JSON: %s" % (text, e)) from None
    return profile.loads(data, "seccomp")
