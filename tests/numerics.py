"""Comparing floating-point results whose summation order differs: one error measure for the suite.

Two correct implementations of a reduction (attention, a convolution, a
gradient) add the same terms in another order, so their results differ by
rounding, a few ulps of the *largest* terms. An elementwise tolerance
(``rtol`` and ``atol`` of ``assert_close``) then fails at random on the
small entries of a tensor whose other entries are large. The error of the
whole tensor, ``||actual - expected|| / ||expected||``, follows the
reference's scale: fp32 rounding keeps it near 1e-7 to 1e-6 for the sizes
tested here, while a wrong scale, a dropped term or a transposed table moves
it by orders of magnitude (``tests/test_fast.py`` plants such mistakes to
show the bound fails them).
"""

from __future__ import annotations

import torch

FP32_BOUND = 1e-5
"""Relative error two fp32 computations of the same value stay under (measured: about 3e-7)."""


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``||actual - expected|| / ||expected||`` in float64 (0 when both are zero)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    if actual.shape != expected.shape:
        raise AssertionError(f"shapes differ: {tuple(actual.shape)} against {tuple(expected.shape)}")
    scale = expected.norm().item()
    difference = (actual - expected).norm().item()
    return difference / scale if scale > 0 else difference


def assert_relatively_close(
    actual: torch.Tensor, expected: torch.Tensor, bound: float = FP32_BOUND, name: str = "tensor"
) -> None:
    """Fail, naming ``name`` and the error, when the whole tensor's relative error exceeds ``bound``."""
    error = relative_error(actual, expected)
    assert error <= bound, f"{name}: relative error {error:.2e} exceeds {bound:.0e}"
