"""FLAME-space training data: a synthetic FLAME-format model and sequences built here; the layer and a short
training run through the vertex loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_runtime.errors import InputError
from model_runtime.rigs.flame_layer import FlameExpressionLayer, load_flame_model, rodrigues_torch
from model_runtime.rigs.flame_sequence import FLAME_DIM, load_flame_sequences
from model_runtime.training.flame_data import apex_index
from model_runtime.training.train import train

V = 80


def _model(rng) -> dict:
    template = rng.normal(0, 0.05, (V, 3)).astype(np.float32)
    template[:, 1] -= np.linspace(0, 0.1, V, dtype=np.float32)  # lower vertices = the jaw region
    return {"v_template": template, "shapedirs": rng.normal(0, 0.002, (V, 3, 60)).astype(np.float32),
            "jaw_joint": np.array([0.0, -0.03, -0.02], np.float32),
            "jaw_weights": np.clip(np.linspace(-0.5, 1.5, V), 0, 1).astype(np.float32)}


@pytest.fixture(scope="module")
def flame_files(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("flame")
    np.savez(root / "flame_model.npz", **_model(rng))
    seqs = root / "sequences"
    seqs.mkdir()
    labels = {"smile": rng.normal(0, 1.0, 50), "open the mouth wide": rng.normal(0, 0.3, 50),
              "look surprised": rng.normal(0, 1.0, 50)}
    jaws = {"smile": [0.0, 0, 0], "open the mouth wide": [0.3, 0, 0], "look surprised": [0.15, 0, 0]}
    for i in range(18):
        text = list(labels)[i % 3]
        t = int(rng.integers(8, 16))
        ramp = np.sin(np.linspace(0, np.pi / 2, t))[:, None]
        expr = ramp * (labels[text] + rng.normal(0, 0.05, 50))[None]
        jaw = ramp * np.asarray(jaws[text])[None]
        np.savez(seqs / f"seq{i:02d}.npz", expression=expr.astype(np.float32), jaw_pose=jaw.astype(np.float32),
                 text=np.array([text]))
    return root


def test_flame_layer_shapes_and_jaw(flame_files):
    layer = load_flame_model(flame_files / "flame_model.npz")
    assert layer.num_vertices == V
    zero = torch.zeros(2, FLAME_DIM)
    out = layer(zero)
    assert out.shape == (2, V, 3)
    assert torch.allclose(out[0], layer.v_template, atol=1e-6)
    jaw = zero.clone()
    jaw[:, 50] = 0.3
    moved = (layer(jaw) - out).norm(dim=-1)[0]
    still = layer.jaw_weights == 0
    assert moved[still].max() < 1e-6 and moved[~still].max() > 1e-4
    r = rodrigues_torch(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, np.pi / 2]]))
    assert torch.allclose(r[0], torch.eye(3), atol=1e-6)
    assert torch.allclose(r[1] @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    with pytest.raises(InputError):
        FlameExpressionLayer(np.zeros((V, 3)), np.zeros((V, 3, 10)), np.zeros(3), np.zeros(V))


def test_flame_sequences_load(flame_files, tmp_path):
    seqs = load_flame_sequences(flame_files / "sequences")
    assert len(seqs) == 18 and all(s.frames.shape[1] == FLAME_DIM for s in seqs)
    assert apex_index(seqs[0].frames) == len(seqs[0].frames) - 1
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError):
        load_flame_sequences(tmp_path)


def test_flame_training_loss_decreases(flame_files, tmp_path):
    cfg = flame_files / "flame.toml"
    cfg.write_text("""
name = "flame-test"
[ifed]
d = 32
heads = 2
text_layers = 1
expr_layers = 1
cross_layers = 1
latent = 16
dropout = 0.0
[train]
steps = 60
batch_size = 18
lr = 3e-3
warmup = 5
log_every = 10
checkpoint_every = 1000
[data]
space = "flame"
flame_model = "flame_model.npz"
flame_sequences = "sequences"
""")
    summary = train(cfg, tmp_path / "out", seed=0, work_dir=tmp_path / "work", progress=False)
    hist = summary["history"]
    assert hist[-1]["vertex"] < 0.5 * hist[0]["vertex"]
    assert hist[-1]["total"] < hist[0]["total"]
    from safetensors import safe_open

    with safe_open(summary["weights"], "pt") as f:
        assert "flame" in f.metadata()["config"]
        assert f.get_tensor("generator.out.3.weight").shape[0] == FLAME_DIM


def test_training_reads_a_full_flame_file_and_deca_style_sequences(tmp_path):
    """One FLAME stack: training's layer and sequences come through rigs/, so real FLAME files and the sequence
    layouts of DECA/EMOCA (exp + 6-value pose) read as well as the compact formats."""
    from flame_samples import S, V as FULL_V, tiny_flame_arrays
    from model_runtime.rigs import FlameLayer, load_flame

    rng = np.random.default_rng(5)
    arrays = tiny_flame_arrays(5, posedirs_scale=0.0)
    arrays["shapedirs"] = rng.normal(0, 1e-3, (FULL_V, 3, S + 60))
    np.savez(tmp_path / "flame2023.npz", **arrays)
    layer = load_flame_model(tmp_path / "flame2023.npz")
    assert layer.num_vertices == FULL_V
    params = torch.zeros(1, FLAME_DIM)
    params[0, 50] = 0.3  # jaw only: FLAME's own forward pass is the reference
    pose = torch.zeros(1, 15)
    pose[0, 6] = 0.3
    exact, _ = FlameLayer(load_flame(tmp_path / "flame2023.npz"))(None, None, pose)
    torch.testing.assert_close(layer(params), exact, atol=1e-6, rtol=0)

    seqs = tmp_path / "deca"
    seqs.mkdir()
    exp = rng.normal(0, 0.5, (6, 50)).astype(np.float32)
    posecode = np.zeros((6, 6), np.float32)
    posecode[:, 3] = np.linspace(0, 0.2, 6)
    np.savez(seqs / "clip.npz", exp=exp, pose=posecode, text=np.array(["open the mouth"]))
    [seq] = load_flame_sequences(seqs)
    assert seq.texts == ("open the mouth",)
    np.testing.assert_allclose(seq.frames, np.concatenate([exp, posecode[:, 3:6]], 1))
    np.savez(seqs / "mute.npz", exp=exp, pose=posecode)  # no text: nothing to learn from
    with pytest.raises(InputError, match="text"):
        load_flame_sequences(seqs)
