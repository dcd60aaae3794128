"""FLOP count of the tutorial's UNet, from the layer table of DESIGN.md section 2.

Convolutions, transposed convolutions and the time MLPs' linear layers, a multiply-add
counted as 2 FLOP and padding taps included; elementwise work (LayerNorm, SiLU, biases,
additions) is left out. XLA's own count (``cost_analysis``), which skips taps that fall
on padding, is reported beside it by the JAX worker as a cross-check.
"""

from __future__ import annotations

TIME_MLP_WIDTHS = (1, 10, 20, 40, 80, 40, 20)  # te1, te2, te3, te_mid, te4, te5, te_out
TRAIN_TO_FORWARD = 3  # backward ~ 2x forward: one pass for input, one for weight gradients


def _conv(c_in: int, c_out: int, kernel: int, size_out: int) -> int:
    return 2 * kernel * kernel * c_in * c_out * size_out * size_out


def _conv_transpose(c_in: int, c_out: int, kernel: int, size_in: int) -> int:
    # Each input pixel scatters a kernel x kernel patch into the output.
    return 2 * kernel * kernel * c_in * c_out * size_in * size_in


def _stage(size: int, c_in: int, features: tuple[int, ...]) -> int:
    """Blocks of two 3x3 convs each (LayerNorm and SiLU are elementwise)."""
    flops = 0
    for c_out in features:
        flops += _conv(c_in, c_out, 3, size) + _conv(c_out, c_out, 3, size)
        c_in = c_out
    return flops


def forward_flops_per_image(time_emb_dim: int = 100) -> int:
    """One UNet forward pass on one 28x28 image."""
    layers = (
        _stage(28, 1, (10, 10, 10)), _conv(10, 10, 4, 14),  # b1, down1
        _stage(14, 10, (20, 20, 20)), _conv(20, 20, 4, 7),  # b2, down2
        _stage(7, 20, (40, 40, 40)), _conv(40, 40, 2, 6), _conv(40, 40, 4, 3),  # b3, down3
        _stage(3, 40, (20, 20, 40)),  # b_mid
        _conv_transpose(40, 40, 4, 3), _conv_transpose(40, 40, 2, 6),  # up1
        _stage(7, 80, (40, 20, 20)), _conv_transpose(20, 20, 4, 7),  # b4, up2
        _stage(14, 40, (20, 10, 10)), _conv_transpose(10, 10, 4, 14),  # b5, up3
        _stage(28, 20, (10, 10, 10)), _conv(10, 1, 3, 28),  # b_out, conv_out
    )
    time_mlps = sum(2 * time_emb_dim * c + 2 * c * c for c in TIME_MLP_WIDTHS)
    return sum(layers) + time_mlps


FORWARD_PER_IMAGE = forward_flops_per_image()
TRAIN_PER_IMAGE = TRAIN_TO_FORWARD * FORWARD_PER_IMAGE


def work_per_call(part: str, size: int, n_steps: int) -> tuple[int, int]:
    """(images, FLOP) of one call of a part's unit of work at ``size``."""
    if part == "gemm":
        return 0, 2 * size ** 3
    if part == "train":
        return size, size * TRAIN_PER_IMAGE
    if part == "forward":
        return size, size * FORWARD_PER_IMAGE
    if part == "sample":  # one network call per step; the reverse update is elementwise
        return size, size * n_steps * FORWARD_PER_IMAGE
    raise ValueError(f"unknown part {part!r}")


def describe() -> dict:
    return {
        "source": "analytic, from the layer table of DESIGN.md section 2: convs, transposed "
                  "convs and linears, multiply-add = 2 FLOP, padding taps included, "
                  "elementwise ops excluded",
        "forward_per_image": FORWARD_PER_IMAGE,
        "train_per_image": TRAIN_PER_IMAGE,
        "train_rule": f"forward + backward = {TRAIN_TO_FORWARD} x forward",
    }
