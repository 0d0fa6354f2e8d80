"""graphnet.benchmarks.machine: the BLAS kernel against the CPU, the peak probe, the FLOPs of a step."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from graphnet.benchmarks.machine import (
    Peak,
    blas_kernel,
    check_kernel,
    cpu_flags,
    cpu_level,
    forward_flops,
    measure_peak,
    peak_columns,
    step_flops,
)
from graphnet.benchmarks.step import SIZES, blas_floor_step, format_step_table, make_problem
from graphnet.runtime.blas import BlasInfo, blas_info

ZEN5 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512dq "
        "avx512cd avx512bw avx512vl avx512_vnni\nbogomips\t: 4800\n")
AVX512 = cpu_flags(ZEN5)
AVX2 = frozenset({"sse", "sse2", "avx", "fma", "avx2"})


def openblas(architecture: str) -> BlasInfo:
    return BlasInfo("/lib/libopenblas.so", "openblas", "0.3.31", 2, "cblas_sgemm", architecture)


def test_the_cpu_flags_come_from_the_first_flags_line():
    assert {"avx512f", "avx512bw", "avx2"} <= AVX512 and "bogomips" not in AVX512
    assert cpu_flags("processor : 0\n") == frozenset()


@pytest.mark.parametrize("flags, level", [(AVX512, "avx512"), (AVX2, "avx2"), (frozenset({"avx", "sse2"}), "avx"),
                                          (frozenset({"sse2"}), "sse"), (frozenset({"avx512f", "avx2", "fma"}), "avx2"),
                                          (frozenset(), None)])
def test_the_cpu_level_is_its_widest_vectors(flags, level):
    assert cpu_level(flags) == level


def test_a_coretype_that_forces_256_bit_kernels_on_an_avx512_cpu_is_named_in_a_warning():
    check = check_kernel(openblas("Haswell"), AVX512, {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"})
    assert check.narrower
    warning = check.warning()
    assert warning.startswith("warning: the BLAS kernel Haswell uses 256-bit vectors and this CPU has avx512")
    assert "OPENBLAS_CORETYPE=Haswell" in warning and "OPENBLAS_L2_SIZE=1048576" in warning
    assert str(check).splitlines() == ["BLAS kernel: Haswell (256-bit; CPU avx512)", warning]


def test_the_cpus_own_kernel_gives_no_warning():
    assert check_kernel(openblas("SkylakeX"), AVX512, {}).warning() is None
    assert str(check_kernel(openblas("SkylakeX"), AVX512, {})) == "BLAS kernel: SkylakeX (512-bit; CPU avx512)"
    assert check_kernel(openblas("Haswell"), AVX2, {}).warning() is None  # the widest this CPU has


def test_a_narrow_kernel_without_a_variable_and_a_variable_without_a_narrow_kernel_are_said():
    assert "no variable forces it" in check_kernel(openblas("Haswell"), AVX512, {}).warning()
    warning = check_kernel(openblas("SkylakeX"), AVX512, {"OPENBLAS_L2_SIZE": "1048576"}).warning()
    assert warning.startswith("warning: OPENBLAS_L2_SIZE=1048576 set") and "benchmarks run with it unset" in warning


def test_an_unknown_kernel_or_cpu_is_not_called_narrow():
    assert not check_kernel(openblas("neoversen1"), frozenset(), {}).narrower
    assert check_kernel(openblas("SkylakeX"), frozenset(), {}).warning() is None
    mkl = BlasInfo("/lib/libmkl_rt.so", "mkl", "2024", 2, "cblas_sgemm", "")
    assert str(check_kernel(mkl, AVX512, {})) == "BLAS kernel: not reported (vector width unknown; CPU avx512)"


def test_this_process_reports_the_kernel_threadpoolctl_sees():
    np.matmul(np.ones((2, 2)), np.ones((2, 2)))
    [entry] = [e for e in threadpool_info() if e.get("user_api") == "blas"][:1] or [{}]
    assert blas_info().architecture == str(entry.get("architecture") or "")
    assert blas_kernel().architecture == blas_info().architecture
    if entry.get("architecture"):
        assert f"kernel {entry['architecture']}" in str(blas_info())


def test_the_flops_of_a_step_are_those_of_the_blas_floors_gemms(monkeypatch):
    """Counted from the GEMMs the floor contender actually calls, not from the formula."""
    counted = []
    real = np.matmul

    def counting(A, B, out):
        counted.append(2 * A.shape[0] * A.shape[1] * B.shape[1])
        return real(A, B, out=out)

    for size, (dims, batch) in SIZES.items():
        counted.clear()
        monkeypatch.setattr(np, "matmul", counting)
        step = blas_floor_step(make_problem(size))
        step()
        monkeypatch.setattr(np, "matmul", real)
        assert step_flops(dims, batch) == sum(counted), size
    assert forward_flops((784, 512, 256, 10), 32) == 2 * 32 * (784 * 512 + 512 * 256 + 256 * 10)


def test_the_peak_probe_times_one_core_and_all_and_leaves_the_thread_count_as_it_was():
    before = blas_info().num_threads
    peak = measure_peak(size=64, calls=1, cores=2)
    assert peak.size == 64 and peak.cores == 2 and peak.per_core > 0 and peak.all_cores > 0
    assert blas_info().num_threads == before
    assert str(peak).startswith("peak (sgemm 64^3, best of the calls): ")


def test_a_rows_gflops_and_share_of_the_peak():
    peak = Peak(2048, 250.0, 2, 500.0)
    row = peak_columns({"us": 1000.0, "ratio": 1.1}, 100e6, peak)  # 100 MFLOP in 1 ms
    assert row["gflops"] == pytest.approx(100.0) and row["peak_fraction"] == pytest.approx(0.2)
    assert peak.fraction(100.0, threads=1) == pytest.approx(0.4)
    assert peak_columns({"us": None}, 1e6, peak)["gflops"] is None
    assert peak_columns({"us": 1.0}, 1e6, None)["peak_fraction"] is None
    table = format_step_table([{"size": "S", "contender": "blas_floor", "us": 1000.0, "ratio": 1.0, **row}])
    header, line = table.splitlines()
    assert "GFLOP/s" in header and "of peak" in header and "100.0" in line and "20.0%" in line
