"""The runtime's executable, out of the container's reach (CVE-2019-5736).

A process the runtime sends into a container runs, until its last ``execve``, the runtime's
executable -- here the Python interpreter. A script in the container that starts with
``#!/proc/self/exe`` makes the kernel run that executable again inside the container, and a
process there that keeps a descriptor of it can write the host's file once nothing executes
it any more. The defence, as in runc and crun: every such process runs from a sealed copy
(memfd_create(2) with ``F_SEAL_WRITE``, fcntl(2) "File seals"), which no one can write.

Two ways to get there, with the same guarantee:

* the command line (:func:`reexec_runtime`): ``run``, ``create`` and ``exec`` re-execute the
  runtime itself from the copy before anything else, once; every process it forks then runs
  the copy, and needs no second interpreter start of its own;
* a program that calls the library (whose executable minins cannot replace): each forked
  intermediate re-executes from the copy (:func:`minins.child.reexec`).

Standard library only, and nothing heavy: the command line imports this before its other
modules.
"""
import os
import sys

COPIES = []  # the sealed copy, made once per runtime process (its descriptor, close-on-exec)

_RUNNING = []  # the answer of running_sealed(), once known


def copy():
    """A sealed, close-on-exec memfd copy of the running interpreter's executable (its
    descriptor): sealed against writes, growing, shrinking and further seals. Made once per
    runtime process. Raises :class:`minins.errors.SyscallError` when the kernel has no memfd
    (before 3.17) or the executable cannot be read."""
    if COPIES:
        return COPIES[0]
    import fcntl

    from .errors import SyscallError

    exe = os.readlink("/proc/self/exe")
    try:
        src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno, "open", exe) from None
    try:
        fd = os.memfd_create("minins-runtime", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            size, done = os.fstat(src).st_size, 0
            while done < size:
                n = os.sendfile(fd, src, done, size - done)
                if n == 0:
                    raise SyscallError(5, "copy", exe, "short read")  # EIO
                done += n
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                        | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        except BaseException:
            os.close(fd)
            raise
    except OSError as e:
        if isinstance(e, SyscallError):
            raise
        raise SyscallError(e.errno, "seal a copy of", exe) from None
    finally:
        os.close(src)
    COPIES.append(fd)
    return fd


def running_sealed():
    """Does this process run from a sealed copy (its ``/proc/self/exe`` a memfd that carries
    ``F_SEAL_WRITE``)? Asked of the kernel, not of a flag: opening ``/proc/self/exe`` gives the
    executable's own file, and ``F_GET_SEALS`` fails (EINVAL) on anything but a memfd. Then no
    forked process needs to re-execute: it shares the copy. Cached."""
    if not _RUNNING:
        import fcntl

        try:
            fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            _RUNNING.append(False)
        else:
            try:
                _RUNNING.append(bool(fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE))
            except OSError:
                _RUNNING.append(False)
            finally:
                os.close(fd)
    return _RUNNING[0]


def writable_by_containers():
    """Could a container of ours write the runtime's executable at all? Not when we are not
    root and cannot write it ourselves (rootless: a container holds at most our uid, and
    capabilities only in a user namespace of its own, which owns no host file)."""
    return os.geteuid() == 0 or os.access("/proc/self/exe", os.W_OK)


def reexec_runtime(argv):
    """The command line's way (``run``, ``create``, ``exec``): execute the sealed copy in
    place of this process, with the same interpreter name, environment and arguments
    (``argv``, without the program name), and go on in :func:`minins.cli.entry` there. Returns
    without doing anything when we run sealed already, when no container could write the
    executable, or when the interpreter's path is unknown or it is a frozen application (then
    the forked intermediate re-executes, as for the library); raises ``SyscallError`` when the
    copy cannot be made or executed.

    The new interpreter starts without ``site`` (``-s -S``: minins needs only the standard
    library and its own directory, put first on ``sys.path``); it finds its standard library
    from the interpreter's path (``argv[0]``), as the first one did, so a venv needs nothing
    more. One interpreter start more for this process, none for each process it forks (they
    share the copy): the forked intermediate goes straight on with the modules already
    loaded."""
    if running_sealed() or not writable_by_containers() or not sys.executable \
            or getattr(sys, "frozen", False):
        return  # (a frozen application has no interpreter to start with -c)
    fd = copy()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    boot = ("import sys; sys.path.insert(0, %r); from minins import cli; "
            "cli.entry(sealed=True)" % here)
    try:
        os.execve(fd, [sys.executable] + interpreter_options() + ["-c", boot] + list(argv),
                  os.environ)
    except OSError as e:
        from .errors import SyscallError

        raise SyscallError(e.errno, "execute the sealed copy of", sys.executable) from None


def interpreter_options():
    """The options the re-executed interpreter starts with: ``-s -S``, and the ones this
    interpreter was given that change how it runs (isolation, ignored environment, no
    bytecode files, optimisation, ``-W`` and ``-X`` options such as ``importtime``)."""
    flags = sys.flags
    out = ["-I"] if flags.isolated else ["-E"] if flags.ignore_environment else []
    out += ["-s", "-S"]
    if flags.dont_write_bytecode:
        out.append("-B")
    out += ["-O"] * flags.optimize
    for opt in sys.warnoptions:
        out += ["-W", opt]
    for name, value in getattr(sys, "_xoptions", {}).items():
        out += ["-X", name if value is True else "%s=%s" % (name, value)]
    return out


def needed(cfg, lc=None):
    """Must the processes entering a container made from ``cfg`` re-execute from the sealed
    copy (:func:`minins.child.reexec`)?

    Not when this process runs from it already (:func:`running_sealed`: the command line).
    Otherwise skipped only where writing the runtime's executable is impossible from the
    container: rootless (:func:`writable_by_containers`), or with a user namespace whose maps
    contain neither host uid 0 nor the executable's owner, when the file is writable by its
    owner only (then no process of the container has a uid, nor a capability over the file,
    that could open it for writing). And with a fake libc (``lc`` not :mod:`minins.libc`:
    tests of the child's steps), which a re-executed process would not keep."""
    if lc is not None and lc is not sys.modules.get("minins.libc"):
        return False
    if running_sealed() or not writable_by_containers():
        return False
    ns = cfg.namespace("NEWUSER")
    if ns is None or ns.path:
        return True  # no user namespace, or one we cannot see the maps of
    try:
        st = os.stat("/proc/self/exe")
    except OSError:
        return True
    if st.st_mode & 0o022:
        return True  # group- or world-writable: anyone may
    from .idmap import container_id_from_mapping

    return any(container_id_from_mapping(uid, cfg.uid_mappings) is not None
               for uid in (0, st.st_uid))
