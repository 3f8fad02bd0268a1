"""minins imports only the standard library and itself."""
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(REPO, "..", "shared", "tools", "imports-outside-stdlib")
LOCAL = os.path.join(REPO, "tools", "imports-outside-stdlib")


def test_minins_imports_only_the_standard_library():
    tool = CHECK if os.path.exists(CHECK) else LOCAL
    if not os.path.exists(tool):
        pytest.skip("the zero-dependency check is not available")
    # Through its own #! line: the tool needs Python 3.10's sys.stdlib_module_names, and the
    # suite may run on an older interpreter.
    proc = subprocess.run([tool, "minins"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "standard library only" in proc.stdout
