"""graphnet.runtime.blas in a child process: the environment turns the GEMM handle off."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from graphnet.runtime.blas import find_gemm, gemm_status


pytestmark = pytest.mark.skipif(find_gemm(np.float32) is None, reason=f"no cblas GEMM: {gemm_status()}")


def test_the_environment_can_turn_it_off():
    code = ("import numpy as np; from graphnet.runtime.blas import find_gemm, gemm_status; "
            "assert find_gemm(np.float32) is None; print(gemm_status())")
    env = dict(os.environ, GRAPHNET_NO_CBLAS="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "disabled by $GRAPHNET_NO_CBLAS" in result.stdout
