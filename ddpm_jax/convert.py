"""Weights between this Flax UNet and the tutorial's PyTorch state_dict, both ways.

Works on numpy arrays; torch is imported only to read or write a ``.pt`` file.
The JAX parameter paths mirror the tutorial's module names, so each leaf maps by
name (``b1/0/conv1/kernel`` <-> ``network.b1.0.conv1.weight``) plus a layout change:

    conv and transposed-conv kernels  torch (O, I, kH, kW) / (I, O, kH, kW) -> (kH, kW, I, O) / (kH, kW, O, I)
                                      one transpose(2, 3, 1, 0) for both: Flax's transposed
                                      conv with transpose_kernel=True takes torch's layout so
    Linear weight (out, in)        -> Dense kernel (in, out)
    LayerNorm weight/bias (C, H, W) -> scale/bias (H, W, C)      (a transpose, not a reshape)
    time_embed.weight (T, d)       -> time_embed/embedding (T, d)

The tutorial creates LayerNorm parameters for the one block that does not normalize
(``b_out.2.ln``); this model does not. Export writes them at their initial values (ones,
zeros), as in every tutorial checkpoint; import checks that they are there with the
right shape, then drops them (the tutorial never applies them).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ddpm_jax.unet import UNet

PREFIX = "network."
UNUSED_LAYER_NORM = "b_out.2.ln"  # created by the tutorial, never applied
_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias", "embedding": "weight"}


def _to_torch_layout(leaf_name: str, value: np.ndarray) -> np.ndarray:
    if leaf_name == "embedding":
        return value
    if value.ndim == 4:  # (kH, kW, I, O) -> (O, I, kH, kW); transposed convs likewise
        return value.transpose(3, 2, 0, 1)
    if value.ndim == 3:  # LayerNorm (H, W, C) -> (C, H, W)
        return value.transpose(2, 0, 1)
    if value.ndim == 2:  # Dense (in, out) -> Linear (out, in)
        return value.T
    return value


def _to_jax_layout(leaf_name: str, value: np.ndarray) -> np.ndarray:
    if leaf_name == "embedding":
        return value
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 3:
        return value.transpose(1, 2, 0)
    if value.ndim == 2:
        return value.T
    return value


def _flat_params(params) -> dict[tuple[str, ...], np.ndarray]:
    flat = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        flat[tuple(k.key for k in path)] = np.asarray(leaf)
    return flat


def _torch_key(path: tuple[str, ...]) -> str:
    return ".".join(path[:-1] + (_LEAF_NAMES[path[-1]],))


def params_to_torch(params, prefix: str = PREFIX) -> dict[str, np.ndarray]:
    """The tutorial's state_dict (173 entries with the default prefix) as numpy arrays."""
    state = {}
    for path, value in _flat_params(params).items():
        # A C-ordered, writable copy: torch.from_numpy shares memory and wants to own it.
        state[prefix + _torch_key(path)] = np.array(_to_torch_layout(path[-1], value), order="C")
    channels = np.asarray(params["b_out"]["2"]["conv1"]["kernel"]).shape[2]  # the block's input
    size = (channels, 28, 28)
    state[f"{prefix}{UNUSED_LAYER_NORM}.weight"] = np.ones(size, np.float32)
    state[f"{prefix}{UNUSED_LAYER_NORM}.bias"] = np.zeros(size, np.float32)
    return state


def params_from_torch(state_dict) -> dict:
    """Flax parameters from the tutorial's state_dict (torch tensors or numpy arrays).

    Keys may carry the saved DDPM's ``network.`` prefix or not. Missing, unexpected or
    misshapen entries raise ValueError naming every one of them.
    """
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) for k in state_dict):
        raise ValueError("expected a state_dict: a dict from parameter names to tensors")
    state = {k: _as_numpy(v) for k, v in state_dict.items()}
    if state and all(k.startswith(PREFIX) for k in state):
        state = {k[len(PREFIX):]: v for k, v in state.items()}
    if "time_embed.weight" not in state or np.ndim(state["time_embed.weight"]) != 2:
        raise ValueError("state_dict has no time_embed.weight of shape (n_steps, time_emb_dim); "
                         "is this the tutorial's DDPM or UNet?")
    n_steps, time_emb_dim = state["time_embed.weight"].shape
    expected = _expected_torch_shapes(UNet(int(n_steps), int(time_emb_dim)))

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(f"{k}: {tuple(state[k].shape)}, expected {expected[k]}"
                       for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    problems = [f"{label}: {', '.join(items)}" for label, items in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen)) if items]
    if problems:
        raise ValueError("state_dict does not match the tutorial's UNet; " + "; ".join(problems))

    params: dict = {}
    for key, value in state.items():
        if key.startswith(UNUSED_LAYER_NORM + "."):
            continue
        path = _jax_path(key)
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = jnp.asarray(_to_jax_layout(path[-1], value.astype(np.float32)))
    return params


def _jax_path(torch_key: str) -> tuple[str, ...]:
    *modules, leaf = torch_key.split(".")
    if modules == ["time_embed"]:
        return ("time_embed", "embedding")
    if modules[-1] == "ln":
        return tuple(modules) + (("scale" if leaf == "weight" else "bias"),)
    return tuple(modules) + (("kernel" if leaf == "weight" else "bias"),)


def _expected_torch_shapes(network: UNet) -> dict[str, tuple[int, ...]]:
    shapes = jax.eval_shape(network.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)),
                            jnp.zeros((1,), jnp.int32))["params"]
    expected = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(shapes):
        path = tuple(k.key for k in path)
        dummy = np.empty(leaf.shape, np.float32)
        expected[_torch_key(path)] = tuple(_to_torch_layout(path[-1], dummy).shape)
    c = shapes["b_out"]["2"]["conv1"]["kernel"].shape[2]
    expected[f"{UNUSED_LAYER_NORM}.weight"] = expected[f"{UNUSED_LAYER_NORM}.bias"] = (c, 28, 28)
    return expected


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def save_torch_checkpoint(path: str | os.PathLike, params) -> Path:
    """Writes ``params`` as the tutorial's DDPM state_dict (``torch.save``), loadable strictly."""
    import io

    import torch

    from ddpm_io.runs import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in params_to_torch(params).items()}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_torch_checkpoint(path: str | os.PathLike) -> dict:
    """Flax parameters from a ``.pt`` file: a tutorial state_dict or a ddpm-torch checkpoint."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no torch checkpoint at {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(f"{path} is not a readable torch checkpoint ({e})") from e
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        loaded = loaded["model"]  # a ddpm-torch training checkpoint
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state_dict")
    return params_from_torch(loaded)
