import numpy as np
import pytest
import torch

from ddpm_torch.ddpm import DDPM
from ddpm_torch.unet import UNet, sinusoidal_embedding

T = 50  # small time table: nothing below depends on T except the table's shape


def tutorial_state_dict_keys(prefix: str = "network.") -> list[str]:
    """The tutorial's DDPM state_dict keys in its order, written out from DESIGN.md section 2."""
    keys = ["time_embed.weight"]

    def pair(name):
        keys.extend([f"{name}.weight", f"{name}.bias"])

    def te(name):
        pair(f"{name}.0")
        pair(f"{name}.2")

    def stage(name):
        for i in range(3):
            for part in ("ln", "conv1", "conv2"):
                pair(f"{name}.{i}.{part}")

    te("te1"), stage("b1"), pair("down1")
    te("te2"), stage("b2"), pair("down2")
    te("te3"), stage("b3"), pair("down3.0"), pair("down3.2")
    te("te_mid"), stage("b_mid")
    pair("up1.0"), pair("up1.2"), te("te4"), stage("b4")
    pair("up2"), te("te5"), stage("b5")
    pair("up3"), te("te_out"), stage("b_out")
    pair("conv_out")
    return [prefix + k for k in keys]


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return UNet(n_steps=T)


def test_state_dict_has_the_tutorials_173_keys():
    state = DDPM(n_steps=T).state_dict()
    assert list(state) == tutorial_state_dict_keys()
    assert len(state) == 173
    shapes = {
        "network.time_embed.weight": (T, 100),
        "network.te1.0.weight": (1, 100),
        "network.te4.2.weight": (80, 80),
        "network.b1.0.ln.weight": (1, 28, 28),
        "network.b4.0.ln.weight": (80, 7, 7),
        "network.b_mid.2.conv2.weight": (40, 40, 3, 3),
        "network.b_out.2.ln.weight": (10, 28, 28),
        "network.down3.0.weight": (40, 40, 2, 2),
        "network.up1.0.weight": (40, 40, 4, 4),
        "network.up3.weight": (10, 10, 4, 4),
        "network.conv_out.weight": (1, 10, 3, 3),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes


def test_tutorial_state_dict_loads_strictly(unet):
    other = DDPM(n_steps=T)
    other.load_state_dict(DDPM(unet, n_steps=T).state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(other.network.state_dict().values(),
                                                  unet.state_dict().values()))


def test_parameter_counts():
    net = UNet(n_steps=1000)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 506_852  # the tutorial's count
    assert net.time_embed.weight.numel() == 100_000 and not net.time_embed.weight.requires_grad
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([0, 999])
    net(x, t).square().mean().backward()
    used = {n: p.numel() for n, p in net.named_parameters() if p.grad is not None}
    assert sum(used.values()) == 491_172
    unused = {n for n, p in net.named_parameters() if p.grad is None}
    assert unused == {"time_embed.weight", "b_out.2.ln.weight", "b_out.2.ln.bias"}


def test_shapes_through_the_unet(unet):
    expected = {
        "b1": (10, 28, 28), "down1": (10, 14, 14), "b2": (20, 14, 14), "down2": (20, 7, 7),
        "b3": (40, 7, 7), "down3.0": (40, 6, 6), "down3": (40, 3, 3), "b_mid": (40, 3, 3),
        "up1.0": (40, 6, 6), "up1": (40, 7, 7), "b4": (20, 7, 7), "up2": (20, 14, 14),
        "b5": (10, 14, 14), "up3": (10, 28, 28), "b_out": (10, 28, 28), "conv_out": (1, 28, 28),
    }
    seen = {}
    modules = dict(unet.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda m, args, out, name=name: seen.__setitem__(name, tuple(out.shape[1:])))
        for name in expected]
    try:
        out = unet(torch.randn(3, 1, 28, 28), torch.tensor([0, 1, T - 1]))
    finally:
        for h in handles:
            h.remove()
    assert seen == expected
    assert out.shape == (3, 1, 28, 28) and out.dtype == torch.float32


def test_timesteps_as_n_or_n_by_1_give_identical_outputs(unet):
    x, t = torch.randn(4, 1, 28, 28), torch.tensor([0, 7, 21, T - 1])
    with torch.no_grad():
        assert torch.equal(unet(x, t), unet(x, t[:, None]))
        assert torch.equal(unet(x, t), unet(x, t.int()))


@pytest.mark.parametrize("x_shape, t, message", [
    ((2, 28, 28, 1), [0, 1], r"\(N, 1, 28, 28\) \(NCHW\)"),
    ((2, 1, 28), [0, 1], r"\(N, 1, 28, 28\)"),
    ((2, 1, 14, 14), [0, 1], r"\(N, 1, 28, 28\)"),
    ((2, 1, 28, 28), [0, T], rf"timesteps must be in 0..{T - 1}, got values from 0 to {T}"),
    ((2, 1, 28, 28), [-1, 0], rf"timesteps must be in 0..{T - 1}"),
    ((2, 1, 28, 28), [0, 1, 2], r"t must have shape \(2,\) or \(2, 1\), got \(3,\)"),
    ((2, 1, 28, 28), [[0, 1]], r"t must have shape \(2,\) or \(2, 1\), got \(1, 2\)"),
    ((2, 1, 28, 28), [0.0, 1.0], "integer timesteps"),
    ((2, 1, 28, 28), [True, False], "integer timesteps"),
])
def test_bad_inputs_raise_value_errors(unet, x_shape, t, message):
    with pytest.raises(ValueError, match=message):
        unet(torch.zeros(x_shape), torch.tensor(t))


def test_integer_images_are_rejected(unet):
    with pytest.raises(ValueError, match="float32"):
        unet(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), torch.tensor([0]))


def test_time_table_equals_the_float64_oracle_bit_for_bit():
    # The same construction as ddpm_jax's table (numpy float64, cast once): equal bits
    # here mean equal bits across the two frameworks.
    n, d = 1000, 100
    t = np.arange(n, dtype=np.float64)[:, None]
    w = 10_000.0 ** (-4.0 * np.arange(d // 2, dtype=np.float64) / d)
    oracle = np.empty((n, d))
    oracle[:, 0::2], oracle[:, 1::2] = np.sin(t * w), np.cos(t * w)
    table = sinusoidal_embedding(n, d)
    assert table.dtype == torch.float32
    np.testing.assert_array_equal(table.numpy(), oracle.astype(np.float32))
    assert torch.equal(UNet(n, d).time_embed.weight, table)


def test_time_table_follows_the_tutorials_formula():
    # The tutorial's own float32 construction: w_j = 1 / 10000 ** (2j / d), even j only.
    n, d = 1000, 100
    wk = torch.tensor([1 / 10_000 ** (2 * j / d) for j in range(d)]).reshape(1, d)
    t = torch.arange(n).reshape(n, 1)
    tutorial = torch.zeros(n, d)
    tutorial[:, ::2] = torch.sin(t * wk[:, ::2])
    tutorial[:, 1::2] = torch.cos(t * wk[:, ::2])
    # Not bit for bit: the tutorial's float32 arithmetic drifts by up to ~6e-5 at large t.
    assert (sinusoidal_embedding(n, d) - tutorial).abs().max().item() < 1e-4


def test_odd_embedding_dimension_is_rejected():
    with pytest.raises(ValueError, match="must be even"):
        sinusoidal_embedding(10, 7)


def test_reset_parameters_redraws_the_construction_weights():
    torch.manual_seed(7)
    built = UNet(n_steps=T)
    reset = UNet(n_steps=T)
    torch.manual_seed(7)
    reset.reset_parameters()
    for (name, a), b in zip(built.state_dict().items(), reset.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(reset.time_embed.weight, sinusoidal_embedding(T, 100))
