"""tools/vm-arch-tests.list, the focused set the ARM guests run (tools/vm-arm64-tests,
tools/vm-armhf-tests), names only tests that exist: a renamed test fails here, on the host,
rather than going missing from the guests' run."""
import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
LIST = REPO / "tools" / "vm-arch-tests.list"


def entries():
    for line in LIST.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            yield entry


def test_every_entry_names_an_existing_test():
    missing = []
    seen = set()
    for entry in entries():
        assert entry not in seen, "listed twice: " + entry
        seen.add(entry)
        path, _, name = entry.partition("::")
        source = REPO / path
        if not (path.startswith("tests/test_") and source.is_file()):
            missing.append(entry)
            continue
        if name:
            tree = ast.parse(source.read_text())
            tests = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            if name.split("[", 1)[0] not in tests:
                missing.append(entry)
    assert not missing, "tools/vm-arch-tests.list names what is not there: %s" % missing
    assert len(seen) >= 10


def test_the_set_covers_what_differs_per_architecture():
    files = {e.split("::")[0] for e in entries()}
    for needed in ("tests/test_every_namespace.py", "tests/test_libc.py",
                   "tests/test_rootfs.py", "tests/test_network.py",
                   "tests/test_cgroups_v2.py", "tests/test_cgroups_bpf.py",
                   "tests/test_lifecycle.py", "tests/test_exec.py",
                   "tests/test_seccomp_kernel.py"):
        assert needed in files, needed
