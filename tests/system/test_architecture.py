"""`import graphnet` in a fresh interpreter: the submodules it loads."""
from __future__ import annotations

import subprocess
import sys

from tests._support.package_source import ROOT


def test_import_graphnet_loads_submodules_on_first_use():
    """`import graphnet` is the package and its foundation; a name of `graphnet` loads its module then."""
    code = ("import sys, graphnet; before = {m for m in sys.modules if m.startswith('graphnet')}; "
            "graphnet.train; after = {m for m in sys.modules if m.startswith('graphnet')}; "
            "print(len(before), 'graphnet.training' in before, 'graphnet.training' in after)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "tests",
                          timeout=120)
    count, training_before, training_after = done.stdout.split()
    assert int(count) <= 10 and training_before == "False" and training_after == "True", done.stdout + done.stderr
