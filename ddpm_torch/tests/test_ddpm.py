import pytest
import torch

from ddpm_io.images import gif_frame_steps
from ddpm_io.runs import ModelConfig
from ddpm_torch.ddpm import DDPM, reverse_step
from ddpm_torch.schedule import make_schedule
from ddpm_torch.unet import UNet

ONE = torch.ones(1, 1, 28, 28)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule(1000)


@pytest.mark.parametrize("z", [torch.zeros_like(ONE), torch.randn(1, 1, 28, 28), None])
def test_reverse_step_at_t0_ignores_z(schedule, z):
    # (1 - 0.01) / sqrt(0.9999) = 0.9900495 in exact arithmetic; float32 rounding of
    # 1 - alpha_0 puts the result 8e-7 below it.
    for sigma in ("beta", "posterior"):
        out = reverse_step(schedule, ONE, 0, ONE, z, sigma)
        assert out.flatten().tolist() == pytest.approx([0.9900495] * 784, abs=1e-6)


def test_reverse_step_at_the_last_timestep(schedule):
    out = reverse_step(schedule, ONE, 999, ONE, torch.zeros_like(ONE))
    assert out[0, 0, 0, 0].item() == pytest.approx(0.9899491, abs=1e-6)


def test_reverse_step_noise_scales(schedule):
    t, z = 500, torch.full_like(ONE, 2.0)
    base = reverse_step(schedule, ONE, t, ONE, torch.zeros_like(ONE))
    beta = reverse_step(schedule, ONE, t, ONE, z, "beta") - base
    posterior = reverse_step(schedule, ONE, t, ONE, z, "posterior") - base
    a = schedule.alpha_bars.double()
    b = schedule.betas.double()
    assert beta[0, 0, 0, 0].item() == pytest.approx(2 * b[t].sqrt().item(), rel=1e-5)
    tilde = (1 - a[t - 1]) / (1 - a[t]) * b[t]
    assert posterior[0, 0, 0, 0].item() == pytest.approx(2 * tilde.sqrt().item(), rel=1e-5)


def test_reverse_step_rejects_unknown_sigma(schedule):
    with pytest.raises(ValueError, match="sigma must be one of"):
        reverse_step(schedule, ONE, 3, ONE, ONE, "learned")


def test_forward_is_the_closed_form_noising(zero_net):
    ddpm = DDPM(zero_net, n_steps=1000)
    x0, eta = torch.rand(3, 1, 28, 28) * 2 - 1, torch.randn(3, 1, 28, 28)
    t = torch.tensor([0, 499, 999])
    a = ddpm.schedule.alpha_bars[t].reshape(3, 1, 1, 1)
    expected = a.sqrt() * x0 + (1 - a).sqrt() * eta
    assert torch.equal(ddpm(x0, t, eta), expected)
    assert torch.equal(ddpm(x0, t[:, None], eta), expected)
    torch.manual_seed(1)
    drawn = ddpm(x0, t)
    torch.manual_seed(1)
    assert torch.equal(drawn, ddpm(x0, t, torch.randn_like(x0)))


def test_loss_is_the_plain_mean_squared_error(zero_net):
    ddpm = DDPM(zero_net, n_steps=10)
    eta = torch.randn(2, 1, 28, 28)
    loss = ddpm.loss(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2]), eta)
    assert loss.item() == pytest.approx(eta.square().mean().item())  # no 1/2 factor


@pytest.mark.parametrize("t, z, message", [
    (10, ONE, "t must be in 0..9, got 10"),
    (-1, ONE, "t must be in 0..9, got -1"),
    (torch.tensor([1, 2]), ONE, "one scalar t"),
])
def test_step_rejects_bad_timesteps(zero_net, t, z, message):
    with pytest.raises(ValueError, match=message):
        DDPM(zero_net, n_steps=10).step(ONE, t, z)


def test_forward_rejects_bad_inputs(zero_net):
    ddpm = DDPM(zero_net, n_steps=10)
    with pytest.raises(ValueError, match="x0 must have shape"):
        ddpm(torch.zeros(1, 28, 28, 1), torch.tensor([0]))
    with pytest.raises(ValueError, match="eta must have shape"):
        ddpm(ONE, torch.tensor([0]), torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="timesteps must be in 0..9"):
        ddpm(ONE, torch.tensor([10]))


def test_network_and_ddpm_must_agree_on_t():
    with pytest.raises(ValueError, match="time table for 10 steps, the DDPM has 20"):
        DDPM(UNet(n_steps=10), n_steps=20)


def test_config_round_trip():
    config = ModelConfig(n_steps=20, min_beta=2e-4, max_beta=0.03)
    ddpm = DDPM.from_config(config)
    assert ddpm.config == config
    assert ddpm.image_chw == (1, 28, 28) and ddpm.network.n_steps == 20


def test_schedule_is_not_in_the_state_dict(zero_net):
    ddpm = DDPM(zero_net, n_steps=10)
    assert dict(ddpm.state_dict()) == {} and list(ddpm.buffers()) == []


def test_sampling_keeps_the_tutorials_frames(zero_net):
    ddpm = DDPM(zero_net, n_steps=1000)
    reports = []
    x0, frames = ddpm.sample(4, 100, generator=torch.Generator().manual_seed(0),
                             progress=reports.append)
    assert x0.shape == (4, 1, 28, 28)
    assert frames.shape == (100, 4, 1, 28, 28)
    assert len(gif_frame_steps(1000, 100)) == 100
    assert torch.equal(frames[-1], x0)
    assert reports == list(range(1, 1001))


def test_sampling_is_seeded_by_its_generator(zero_net):
    ddpm = DDPM(zero_net, n_steps=20)
    a = ddpm.sample(2, 5, generator=torch.Generator().manual_seed(3))
    b = ddpm.sample(2, 5, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("sigma", ["beta", "posterior"])
def test_sampling_with_injected_noise_follows_reverse_step(sigma):
    torch.manual_seed(0)
    T, n = 10, 2
    ddpm = DDPM(UNet(n_steps=T), n_steps=T)
    noise = torch.randn(T + 1, n, 1, 28, 28)
    x0, frames = ddpm.sample(n, T, sigma, noise=noise)
    x = noise[0]
    with torch.no_grad():
        for idx, t in enumerate(range(T - 1, -1, -1)):
            eps = ddpm.network(x, torch.full((n, 1), t))
            x = reverse_step(ddpm.schedule, x, t, eps, noise[1 + idx], sigma)
            assert torch.equal(frames[idx], x)
    assert torch.equal(x0, x)


def test_sampling_rejects_bad_arguments(zero_net):
    ddpm = DDPM(zero_net, n_steps=10)
    with pytest.raises(ValueError, match="n_samples must be at least 1"):
        ddpm.sample(0)
    with pytest.raises(ValueError, match="n_frames must be at least 1"):
        ddpm.sample(4, 0)
    with pytest.raises(ValueError, match="sigma must be one of"):
        ddpm.sample(4, 5, "learned")
    with pytest.raises(ValueError, match=r"noise must have shape \(11, 4, 1, 28, 28\)"):
        ddpm.sample(4, 5, noise=torch.zeros(10, 4, 1, 28, 28))
