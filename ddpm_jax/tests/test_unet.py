import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpm_jax import UNet, sinusoidal_embedding


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def test_shapes_through_the_unet(small_ddpm, small_params):
    net = small_ddpm.network

    @jax.jit
    def run(params, x, t):
        return net.apply({"params": params}, x, t, capture_intermediates=True, mutable=["intermediates"])

    out, state = run(small_params, jnp.zeros((2, 28, 28, 1)), jnp.array([0, 9]))
    seen = state["intermediates"]

    def size(*path):
        node = seen
        for p in path:
            node = node[p]
        return node["__call__"][0].shape[1:]

    assert [size(*p)[0] for p in [("b1",), ("down1",), ("down2",), ("down3", "0"), ("down3",),
                                 ("up1", "0"), ("up1",), ("up2",), ("up3",)]] == \
        [28, 14, 7, 6, 3, 6, 7, 14, 28]
    assert size("b1") == (28, 28, 10) and size("b2") == (14, 14, 20) and size("b3") == (7, 7, 40)
    assert size("b_mid") == (3, 3, 40) and size("b4") == (7, 7, 20) and size("b5") == (14, 14, 10)
    assert size("b_out") == (28, 28, 10)
    assert out.shape == (2, 28, 28, 1)


def test_parameter_count():
    shapes = jax.eval_shape(UNet().init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)),
                            jnp.zeros((1,), jnp.int32))["params"]
    table = count(shapes.pop("time_embed"))
    assert table == 1000 * 100
    assert count(shapes) == 491_172
    # The tutorial counts 506,852: it also creates (and never uses) the LayerNorm of the
    # last b_out block, 10 x 28 x 28 weights and as many biases.
    assert count(shapes) + 2 * 10 * 28 * 28 == 506_852
    assert "ln" not in shapes["b_out"]["2"] and "ln" in shapes["b_out"]["1"]


def test_time_embedding_values():
    table = np.asarray(sinusoidal_embedding(1000, 100))
    assert table.shape == (1000, 100) and table.dtype == np.float32
    np.testing.assert_array_equal(table[0], np.tile([0.0, 1.0], 50))
    assert table[1, 2] == pytest.approx(np.sin(10000 ** -0.04), abs=1e-7)
    assert table[1, 2] == pytest.approx(0.6379482, abs=1e-7)
    # The tutorial's exponent is 4k/d: the textbook 2k/d gives another table.
    textbook = np.sin(999 * 10000.0 ** (-2 * np.arange(50) / 100))
    assert np.abs(table[999, 0::2] - textbook).max() > 0.1
    exact = np.sin(999 * 10000.0 ** (-4 * np.arange(50) / 100)).astype(np.float32)
    np.testing.assert_array_equal(table[999, 0::2], exact)  # float64 then cast: bit for bit


def test_out_of_range_t_inside_jit_gives_nan_not_a_clamped_row(small_ddpm, small_params):
    net = small_ddpm.network
    out = jax.jit(lambda p, t: net.apply({"params": p}, jnp.zeros((2, 28, 28, 1)), t))(
        small_params, jnp.array([3, 10]))
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()
