"""minins.fspath against a model that shares no code with it.

The model is a tiny in-memory filesystem (a dict from path tuples to "dir", "file" or
("link", target)) and a resolver written here from path_resolution(7) and openat2(2)'s
RESOLVE_IN_ROOT: ".." stops at the root, an absolute link target restarts at the root, a
component after a non-directory is ENOTDIR, the 41st link is ELOOP. Hypothesis draws trees
and paths; each tree is built for real in a temporary directory, and minins.fspath resolves
the path there both ways -- with openat2 and by hand (a libc whose openat2 says ENOSYS) --
and must give what the model gives: the same object, or the same errno.
"""
import errno
import os
import stat

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minins import fspath
from minins import libc as real_libc

MAX_LINKS = 40


# --- the model -----------------------------------------------------------------------------------

def split_given(path):
    """A path given to the resolver: "" and "." components mean nothing."""
    return [c for c in path.split("/") if c not in ("", ".")]


def split_target(target):
    """A link's target: "" components mean nothing; a trailing "/" asks for a directory,
    as a final "." does."""
    out = [c for c in target.split("/") if c != ""]
    if out and target.endswith("/"):
        out.append(".")
    return out


class Model(object):
    def __init__(self, entries=()):
        self.nodes = {(): "dir"}
        for path, kind in entries:
            self.nodes[path] = kind

    def kind(self, path):
        node = self.nodes.get(path)
        return node if node is None or isinstance(node, str) else "link"

    def resolve(self, path, create=None):
        """("ok", tuple of names from the root) or ("error", errno). ``create``: "dir" or
        "file" to make what is missing on the way (the last one as ``create`` says)."""
        here = ()
        todo = split_given(path)
        links = 0
        while todo:
            name = todo.pop(0)
            if name == ".":
                continue  # ``here`` is a directory: anything else stopped before
            if name == "..":
                here = here[:-1]
                continue
            child = here + (name,)
            node = self.nodes.get(child)
            if node is None:
                if create is None:
                    return ("error", errno.ENOENT)
                node = self.nodes[child] = "file" if (create == "file" and not todo) else "dir"
            if isinstance(node, tuple):
                links += 1
                if links > MAX_LINKS:
                    return ("error", errno.ELOOP)
                target = node[1]
                if target.startswith("/"):
                    here = ()
                todo = split_target(target) + todo
                continue
            if node != "dir" and todo:
                return ("error", errno.ENOTDIR)
            here = child
        return ("ok", here)


# --- trees and paths -----------------------------------------------------------------------------

NAMES = ["a", "b", "c"]
STEPS = st.sampled_from(NAMES + ["..", ".", ""])


def text_path(draw, min_size=0):
    parts = draw(st.lists(STEPS, min_size=min_size, max_size=5))
    path = "/".join(parts)
    if draw(st.booleans()):
        path = "/" + path
    if draw(st.integers(0, 4)) == 0:
        path += "/"
    return path


@st.composite
def trees(draw):
    """A list of ((names...), kind) in creation order: every parent a directory made before."""
    entries, dirs, taken = [], [()], {()}
    for _ in range(draw(st.integers(0, 10))):
        parent = draw(st.sampled_from(dirs))
        here = parent + (draw(st.sampled_from(NAMES)),)
        if here in taken:
            continue
        taken.add(here)
        kind = draw(st.sampled_from(["dir", "dir", "file", "link"]))
        if kind == "link":
            target = text_path(draw, min_size=1)
            if target.strip("/") == "" and not target.startswith("/"):
                target = "a"
            entries.append((here, ("link", target or "a")))
        else:
            entries.append((here, kind))
            if kind == "dir":
                dirs.append(here)
    return entries


@st.composite
def paths(draw):
    return text_path(draw)


def build(root, entries):
    for names, kind in entries:
        p = os.path.join(root, *names)
        if kind == "dir":
            os.mkdir(p)
        elif kind == "file":
            with open(p, "w") as f:
                f.write("/".join(names))
        else:
            os.symlink(kind[1], p)


def scan(root):
    """The real tree under ``root`` in the model's terms."""
    out = {(): "dir"}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        base = () if rel == "." else tuple(rel.split(os.sep))
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            if stat.S_ISLNK(st_.st_mode):
                out[base + (name,)] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st_.st_mode):
                out[base + (name,)] = "dir"
            else:
                out[base + (name,)] = "file"
    return out


class NoOpenat2(object):
    """A libc without openat2 (before Linux 5.6, qemu-user): open_in_root walks by hand."""

    @staticmethod
    def openat2(*args, **kwargs):
        raise OSError(errno.ENOSYS, "openat2 is not implemented")


def located(root, fd):
    """("ok", names) for the object ``fd`` refers to, checked to be inside ``root``."""
    real = os.readlink("/proc/self/fd/%d" % fd)
    assert real == root or real.startswith(root + "/"), (root, real)
    rel = os.path.relpath(real, root)
    return ("ok", () if rel == "." else tuple(rel.split("/")))


def run(root, fn):
    try:
        fd = fn()
    except OSError as e:
        assert isinstance(e, fspath.SyscallError), repr(e)
        return ("error", e.errno)
    try:
        return located(root, fd)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def openat2_works(tmp_path_factory):
    fd = os.open(str(tmp_path_factory.mktemp("probe")), os.O_PATH | os.O_DIRECTORY)
    try:
        os.close(real_libc.openat2(fd, ".", os.O_PATH, resolve=real_libc.RESOLVE_IN_ROOT))
    except OSError as e:
        pytest.skip("openat2 is not usable here: %s" % e)
    finally:
        os.close(fd)


def check_resolution(tmp_path_factory, entries, path):
    root = str(tmp_path_factory.mktemp("root"))
    build(root, entries)
    expected = Model(entries).resolve(path)
    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        kernel = run(root, lambda: fspath.open_in_root(rootfd, path))
        by_hand = run(root, lambda: fspath.open_in_root(rootfd, path, lc=NoOpenat2))
    finally:
        os.close(rootfd)
    assert kernel == expected, (entries, path)
    assert by_hand == expected, (entries, path)


@settings(max_examples=300, deadline=None)
@given(trees(), paths())
@example([((("a",)), "file")], "a/..")
@example([((("a",)), "file")], "a/b")
@example([(("a",), ("link", "a"))], "a")
@example([(("a",), "dir"), (("a", "b"), ("link", "../../../a/c")), (("a", "c"), "file")], "a/b")
@example([(("a",), "file"), (("b",), ("link", "a/"))], "b")
@example([(("a",), "file"), (("b",), ("link", "/a/."))], "/b")
@example([(("a",), "dir"), (("b",), ("link", "a/"))], "b/")
@example([(("a",), "dir"), (("a", "b"), "dir"), (("a", "b", "c"), "file")], "a/b/c")
@example([(("a",), "dir"), (("a", "b"), ("link", "/"))], "a/b/a/b/a/b")
def test_resolution_agrees_with_the_model(openat2_works, tmp_path_factory, entries, path):
    check_resolution(tmp_path_factory, entries, path)


def chain(n):
    """Links b0 -> b1 -> ... -> b(n-1) -> a (a directory): n links to follow from b0."""
    entries = [(("a",), "dir")]
    for i in range(n):
        entries.append((("b%d" % i,), ("link", "b%d" % (i + 1) if i + 1 < n else "/a")))
    return entries


@pytest.mark.parametrize("n", [39, 40, 41, 42])
def test_forty_links_resolve_the_41st_is_eloop(openat2_works, tmp_path_factory, n):
    expected = Model(chain(n)).resolve("b0")
    assert expected == (("ok", ("a",)) if n <= MAX_LINKS else ("error", errno.ELOOP))
    check_resolution(tmp_path_factory, chain(n), "b0")


# --- creating on the way -------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(trees(), paths(), st.booleans())
@example([], "a/b/c", True)
@example([(("a",), ("link", "/b/c"))], "a", False)
@example([(("a",), ("link", "../x/"))], "a", True)
@example([(("a",), "file")], "a/b", False)
@example([(("a",), "file")], "a", True)
@example([(("a",), "dir")], "a", True)
def test_mkdir_all_agrees_with_the_model(tmp_path_factory, entries, path, final_file):
    root = str(tmp_path_factory.mktemp("root"))
    build(root, entries)
    model = Model(entries)
    expected = model.resolve(path, "file" if final_file else "dir")
    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        got = run(root, lambda: fspath.mkdir_all_in_root(rootfd, path, 0o751, final_file))
    finally:
        os.close(rootfd)
    assert got == expected, (entries, path)
    # what was made, and only that, as the model made it
    if expected[0] == "ok":
        assert scan(root) == model.nodes, (entries, path)
        made = [p for p in model.nodes if p and p not in dict(entries)]
        umask = os.umask(0)
        os.umask(umask)
        for p in made:
            mode = os.lstat(os.path.join(root, *p)).st_mode & 0o7777
            assert mode == (0o751 if model.nodes[p] == "dir" else 0o644) & ~umask, p


# --- the descriptor's flags ----------------------------------------------------------------------

@pytest.mark.parametrize("lc", [real_libc, NoOpenat2], ids=["openat2", "by-hand"])
def test_flags_reach_the_final_object(openat2_works, tmp_path, lc):
    root = str(tmp_path)
    build(root, [(("d",), "dir"), (("d", "f"), "file"), (("d", "e"), "dir"),
                 (("l",), ("link", "d/")), (("m",), ("link", "/d/f"))])
    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for path, where in (("d/f", "/d/f"), ("m", "/d/f"), ("l", "/d"), ("d/..", ""),
                            ("", ""), ("..", ""), ("d/e/..", "/d"), ("d/e/../e", "/d/e"),
                            ("l/e/../../m", "/d/f")):
            what = "file" if where.endswith("f") else "dir"
            flags = os.O_RDONLY | (os.O_DIRECTORY if what == "dir" else 0)
            fd = fspath.open_in_root(rootfd, path, flags, lc=lc)
            try:
                assert os.readlink("/proc/self/fd/%d" % fd) == root + where, path
                assert os.get_inheritable(fd) is False
                # a real open (not O_PATH): reading works
                if what == "file":
                    assert os.read(fd, 100) == b"d/f"
                else:
                    assert isinstance(os.listdir(fd), list)
            finally:
                os.close(fd)
        # the default is O_PATH: reading fails with EBADF
        fd = fspath.open_in_root(rootfd, "m", lc=lc)
        try:
            with pytest.raises(OSError) as e:
                os.read(fd, 1)
            assert e.value.errno == errno.EBADF
        finally:
            os.close(fd)
    finally:
        os.close(rootfd)
