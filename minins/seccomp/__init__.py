"""seccomp: OCI ``linux.seccomp`` profiles compiled to classic BPF in pure Python.

* :mod:`.profile` -- the OCI model, validation, rule precedence (pure);
* :mod:`.tables` -- syscall numbers per architecture, generated from the uapi headers;
* :mod:`.compiler` -- profile + native architecture -> ``struct sock_filter[]`` (pure);
* :mod:`.default` -- Moby's default profile, resolved against capabilities and architecture;
* :mod:`.load` -- the child side: resolve, compile (cached), seccomp(2), the NOTIFY listener.

Nothing here is imported at minins start-up unless a container has a profile.
"""
