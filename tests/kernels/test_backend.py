"""Backend selection, laziness, the numba-free install, warm-up, cache keys, vectorization."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import graphnet.kernels as K
import numpy as np
import pytest
from graphnet.kernels import HAVE_NUMBA, KERNEL_NAMES, available_backends, get_backend

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")


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


def test_backend_has_every_kernel_and_a_name() -> None:
    for name in available_backends():
        backend = get_backend(name)
        assert backend.name == name
        for kernel_name in KERNEL_NAMES:
            assert callable(getattr(backend, kernel_name))
            assert backend[kernel_name] is getattr(backend, kernel_name)


def test_backends_are_cached_and_frozen() -> None:
    backend = get_backend("numpy")
    assert get_backend("numpy") is backend
    assert get_backend(" NumPy ") is backend
    with pytest.raises(AttributeError):
        backend.add = None
    with pytest.raises(AttributeError):
        backend.name = "other"
    with pytest.raises(AttributeError):
        del backend.add


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="numba, numpy"):
        get_backend("torch")


def test_default_backend_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHNET_BACKEND", "numpy")
    assert get_backend().name == "numpy"
    monkeypatch.setenv("GRAPHNET_BACKEND", "bogus")
    with pytest.raises(ValueError, match="bogus"):
        get_backend()
    monkeypatch.delenv("GRAPHNET_BACKEND")
    if HAVE_NUMBA:
        assert get_backend().name == "numba"


def test_activation_codes() -> None:
    assert K.ACTIVATION_CODES == {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}
    assert (K.IDENTITY, K.RELU, K.LEAKY_RELU, K.SIGMOID, K.TANH) == (0, 1, 2, 3, 4)


def test_unknown_activation_code_raises(backend: K.KernelBackend) -> None:
    X = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="activation"):
        backend.act_forward(X, 9, 0.0, np.empty_like(X))


def test_out_of_range_labels_raise(backend: K.KernelBackend) -> None:
    X = np.zeros((2, 3), np.float32)
    for bad in (3, -1):
        y = np.array([0, bad], dtype=np.int64)
        for name in ("softmax_cross_entropy", "cross_entropy", "svm_loss"):
            with pytest.raises(ValueError, match="labels"):
                getattr(backend, name)(X, y, np.empty_like(X))


def test_fill_uniform_is_seeded_and_in_place() -> None:
    a, b = np.empty((3, 4), np.float32), np.empty((3, 4), np.float32)
    K.fill_uniform(np.random.default_rng(7), a)
    K.fill_uniform(np.random.default_rng(7), b)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    c = np.empty(5)
    assert K.fill_uniform(np.random.default_rng(1), c) is c


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


@needs_numba
def test_cache_key_includes_the_kernel_source_hash() -> None:
    from graphnet.kernels._jit import SOURCE_HASH, LibraryKeyedCache

    backend = get_backend("numba")
    for name in KERNEL_NAMES:
        dispatcher = getattr(backend, name)
        assert isinstance(dispatcher._cache, LibraryKeyedCache), name
        assert dispatcher.targetoptions["error_model"] == "numpy"
        assert set(dispatcher.targetoptions["fastmath"]) == {"reassoc", "nsz", "arcp", "contract"}
    from graphnet.kernels.examples import example_args

    adam = backend.adam_update
    adam(*example_args("adam_update", np.float32, (2, 2)))
    sig = adam.signatures[0]
    key = adam._cache._index_key(sig, adam.targetctx.codegen())
    assert key[-1] == SOURCE_HASH
    assert len(SOURCE_HASH) == 16


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
