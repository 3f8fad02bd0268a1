"""The repository never names a package registry's host (the project's rule): CI and tools
take a mirror from the machine they run on (its apt sources, pip's configuration)."""
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Built from parts, so that this file does not hold the names it looks for.
REGISTRY_HOSTS = tuple(".".join(parts) for parts in (
    ("deb", "debian", "org"), ("ftp", "debian", "org"), ("security", "debian", "org"),
    ("archive", "ubuntu", "com"), ("security", "ubuntu", "com"), ("ports", "ubuntu", "com"),
    ("pypi", "org"), ("files", "pythonhosted", "org"), ("registry", "npmjs", "org"),
    ("dl-cdn", "alpinelinux", "org"), ("proxy", "golang", "org"), ("crates", "io"),
))


def _tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [os.path.join(REPO, p) for p in out.decode().split("\0") if p]


def test_no_file_names_a_package_registry_host():
    found = []
    for path in _tracked_files():
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").lower()
        except OSError:
            continue
        found.extend("%s: %s" % (os.path.relpath(path, REPO), host)
                     for host in REGISTRY_HOSTS if host in text)
    assert not found, found


def test_ci_leaves_the_mirror_to_build_image():
    # ../shared/tools/vm/build-image takes the first mirror of the machine's apt sources
    # unless MIRROR is set; a default here would override it.
    with open(os.path.join(REPO, ".ci", "run")) as f:
        assert "MIRROR=" not in f.read()
