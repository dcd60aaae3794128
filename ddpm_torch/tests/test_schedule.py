import pytest
import torch

from ddpm_torch.schedule import make_schedule


def test_schedule_is_the_tutorials_linear_one():
    s = make_schedule(1000)
    assert all(v.dtype == torch.float32 and v.shape == (1000,) for v in s)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert torch.equal(s.alphas, 1 - s.betas)
    # Prefix products: each entry is prod(alphas[:i + 1]), computed on its own.
    assert s.alpha_bars[10].item() == torch.prod(s.alphas[:11]).item()
    assert torch.allclose(s.alpha_bars, torch.cumprod(s.alphas.double(), 0).float(), rtol=2e-6)
    assert bool((s.alpha_bars[1:] < s.alpha_bars[:-1]).all())


def test_single_step_schedule():
    s = make_schedule(1, 0.01, 0.01)
    assert s.alpha_bars.tolist() == pytest.approx([0.99])


@pytest.mark.parametrize("args, message", [
    ((0,), "n_steps must be at least 1"),
    ((10, 0.0, 0.02), "0 < min_beta <= max_beta < 1"),
    ((10, 0.03, 0.02), "0 < min_beta <= max_beta < 1"),
    ((10, 1e-4, 1.0), "0 < min_beta <= max_beta < 1"),
])
def test_bad_schedule_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        make_schedule(*args)
