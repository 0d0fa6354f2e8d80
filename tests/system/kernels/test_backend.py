"""The kernel backends in fresh processes: without numba, numba's cache on a cold start, the machine
code of the hot kernels."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest
from graphnet.kernels import HAVE_NUMBA

from tests._support.extras import needs_numba


def _x86_with_avx() -> bool:
    """The host is x86-64 with AVX, so vectorized float32 code uses %ymm/%zmm registers."""
    if not HAVE_NUMBA or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get("avx", False))


needs_x86_avx = pytest.mark.skipif(
    not _x86_with_avx(),
    reason=f"checks for x86 AVX registers (%ymm/%zmm); this host is {platform.machine()} without AVX or numba")


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run `code` in a fresh interpreter; return its stdout (fails on a non-zero exit)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=timeout
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_numpy_backend_works_without_numba() -> None:
    out = run_python(
        """
        import sys
        sys.modules["numba"] = None  # makes "import numba" fail
        import numpy as np
        import graphnet.kernels as K
        from graphnet.kernels.examples import example_args
        assert not K.HAVE_NUMBA and K.available_backends() == ("numpy",)
        backend = K.get_backend()
        assert backend.name == "numpy", backend.name
        for name in K.KERNEL_NAMES:
            getattr(backend, name)(*example_args(name, np.float32, (3, 4)))
        try:
            K.get_backend("numba")
        except ImportError as error:
            assert "pip install numba" in str(error) and "GRAPHNET_BACKEND=numpy" in str(error), error
        else:
            raise AssertionError("numba backend without numba")
        from graphnet.kernels.affine import bias_act_forward_numba
        try:
            bias_act_forward_numba(np.zeros((1, 1)), np.zeros(1), 0, 0.0)
        except ImportError:
            pass
        else:
            raise AssertionError("numba kernel ran without numba")
        assert "numba" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
        print("OK")
        """,
        env={"GRAPHNET_BACKEND": "numpy"},
    )
    assert out.strip().endswith("OK")


@pytest.mark.slow
@needs_numba
def test_building_the_numba_backend_compiles_nothing_and_warmup_compiles_all() -> None:
    out = run_python(
        """
        import numpy as np
        import graphnet.kernels as K
        backend = K.get_backend("numba")
        compiled = [n for n in K.KERNEL_NAMES if getattr(backend, n).signatures]
        assert not compiled, compiled
        seconds = K.warmup(np.float32)
        missing = [n for n in K.KERNEL_NAMES if not getattr(backend, n).signatures]
        assert not missing, missing
        print("OK", seconds)
        """
    )
    assert out.startswith("OK")


@pytest.mark.slow
@needs_x86_avx
def test_hot_float32_kernels_are_vectorized(tmp_path: object) -> None:
    """Packed SIMD instructions in the machine code (a fresh cache: cached code can't be inspected)."""
    out = run_python(
        """
        import re
        import numpy as np
        import graphnet.kernels as K
        from graphnet.kernels.examples import example_args
        from graphnet.kernels._jitmath import exp_into
        backend = K.get_backend("numba")
        exp_into(np.zeros(4, np.float32), np.zeros(4, np.float32))
        kernels = {"exp_into": exp_into}
        for name in ("bias_act_forward", "softmax_cross_entropy", "svm_loss", "adam_update", "all_finite"):
            getattr(backend, name)(*example_args(name, np.float32, (2, 3)))
            kernels[name] = getattr(backend, name)
        for name, dispatcher in kernels.items():
            asm = "\\n".join(dispatcher.inspect_asm().values())
            packed = re.findall(r"\\bv\\w+ps\\s+[^\\n]*%[yz]mm", asm)
            print(name, len(packed))
            assert packed, name
        print("OK")
        """,
        env={"NUMBA_CACHE_DIR": str(tmp_path)},
    )
    assert out.strip().endswith("OK"), out
    print(out)
