"""Training: a tiny config trains, writes loadable weights, and resumes exactly from a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from model_runtime.errors import InputError
from model_runtime.training.train import train

TINY_TOML = """
name = "tiny-test"
[ifed]
d = 32
heads = 2
text_layers = 1
expr_layers = 1
cross_layers = 1
latent = 16
dropout = 0.1
[transition]
hidden = 32
[train]
steps = 8
batch_size = 16
transition_batch = 16
n_single = 40
n_sequence = 20
plain_templates = 1
pool_per = 3
checkpoint_every = 100
log_every = 2
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def test_train_writes_weights_and_card(tiny_config, tmp_path):
    summary = train(tiny_config, tmp_path / "out", seed=0, work_dir=tmp_path / "work", progress=False,
                    evaluate=False)
    weights = tmp_path / "out" / "tiny-test.safetensors"
    assert summary["weights"] == str(weights) and weights.is_file()
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert sidecar["sha256"] == summary["sha256"]
    assert summary["sha256"] in (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert [h["step"] for h in summary["history"]] == [2, 4, 6, 8]
    assert all(np.isfinite(h["total"]) for h in summary["history"])
    from model_runtime.generators.learned import load_learned

    gen = load_learned(weights, device="cpu")
    assert gen.weights_sha256 == summary["sha256"]


def test_resume_from_checkpoint_is_exact(tiny_config, tmp_path):
    straight = train(tiny_config, tmp_path / "a", seed=0, work_dir=tmp_path / "wa", progress=False, evaluate=False)
    first = train(tiny_config, tmp_path / "b", seed=0, work_dir=tmp_path / "wb", progress=False, evaluate=False,
                  stop_at=4)
    assert first["stopped_at"] == 4 and not (tmp_path / "b" / "tiny-test.safetensors").exists()
    resumed = train(tiny_config, tmp_path / "b", seed=0, work_dir=tmp_path / "wb", progress=False, evaluate=False)
    assert resumed["resumed_from"] == 4
    a = load_file(straight["weights"])
    b = load_file(resumed["weights"])
    assert a.keys() == b.keys()
    for key in a:
        assert np.allclose(a[key].numpy(), b[key].numpy(), atol=1e-6), key
    # resume=False starts over
    again = train(tiny_config, tmp_path / "b", seed=0, work_dir=tmp_path / "wb", progress=False, evaluate=False,
                  resume=False, stop_at=2)
    assert again["resumed_from"] == 0


def test_bad_config_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nsteps = 3\nnot_a_setting = 1\n")
    with pytest.raises(InputError, match="not_a_setting"):
        train(bad, tmp_path / "o", progress=False)
    with pytest.raises(InputError):
        train(tmp_path / "missing.toml", tmp_path / "o", progress=False)


def test_train_command_line(tiny_config, tmp_path, capsys):
    from model_runtime.cli import main

    code = main(["train", "--config", str(tiny_config), "--out", str(tmp_path / "out"), "--steps", "4",
                 "--work-dir", str(tmp_path / "work"), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "tiny-test.safetensors" in out and (tmp_path / "out" / "tiny-test.safetensors").is_file()
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
    assert main(["train", "--steps", "0"]) == 2


def test_au_head_trains_on_au_texts_and_descriptions_and_the_card_says_so(tmp_path):
    config = tmp_path / "au.toml"
    config.write_text(TINY_TOML.replace("[transition]", "[generator]\nau_head = true\nau_compose = \"union\"\n"
                                        "[transition]") + "au_loss = 0.5\nau_texts = 45\ndescribe = true\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "comparison.json").write_text(json.dumps({
        "note": "two runs", "baseline": {"au_precision": 0.4, "au_recall": 0.5, "emotion_accuracy": 0.2,
                                         "r_precision_top1": 0.25, "r_precision_top3": 0.5},
        "rows": [{"name": "run A", "encoder": "minilm", "au_precision": 0.55, "au_recall": 0.45,
                  "emotion_accuracy": 0.2, "r_precision_top1": 0.3, "r_precision_top3": 0.5, "shipped": True}],
        "encoders": [{"name": "other", "finding": "not measured"}]}))
    summary = train(config, out, seed=0, work_dir=tmp_path / "work", progress=False, evaluate=False)
    assert all("au" in h and np.isfinite(h["au"]) for h in summary["history"])
    weights = load_file(summary["weights"])
    assert any(key.startswith("generator.au.") for key in weights)
    card = (out / "MODEL_CARD.md").read_text()
    assert "An AU head" in card and "45 in all" in card and "showing cheek raiser" in card
    assert "| **run A** (shipped) | minilm | 0.550 (+0.150) | 0.450 (-0.050) |" in card
    assert "- other: not measured" in card


def test_comparison_rows_are_set_against_the_baseline_of_their_own_encoder(tmp_path):
    from model_runtime.training.model_card import comparison_lines

    keys = ("au_precision", "au_recall", "emotion_accuracy", "r_precision_top1", "r_precision_top3")
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps({
        "note": "n", "baseline": dict.fromkeys(keys, 0.4), "baselines": {"paraphrase-l3": dict.fromkeys(keys, 0.3)},
        "rows": [{"name": "m", "encoder": "minilm", **dict.fromkeys(keys, 0.5)},
                 {"name": "p", "encoder": "paraphrase-l3", **dict.fromkeys(keys, 0.5)}]}))
    lines = comparison_lines(path)
    assert "| m | minilm | " + " | ".join(["0.500 (+0.100)"] * 5) + " |" in lines
    assert "| p | paraphrase-l3 | " + " | ".join(["0.500 (+0.200)"] * 5) + " |" in lines
    assert "| retrieval baseline (training split) | paraphrase-l3 | " + " | ".join(["0.300"] * 5) + " |" in lines
    assert any("baseline of the same text encoder" in line for line in lines)


def test_a_row_measured_before_a_run_time_change_is_set_against_its_own_baseline(tmp_path):
    from model_runtime.training.model_card import comparison_lines

    keys = ("au_precision", "au_recall", "emotion_accuracy", "r_precision_top1", "r_precision_top3")
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps({
        "note": "n", "baseline": dict.fromkeys(keys, 0.45), "earlier_baselines": {"old parser": dict.fromkeys(keys, 0.3)},
        "rows": [{"name": "then", "encoder": "minilm", "baseline": "old parser", **dict.fromkeys(keys, 0.5)},
                 {"name": "now", "encoder": "minilm", **dict.fromkeys(keys, 0.5)}]}))
    lines = comparison_lines(path)
    assert "| then | minilm | " + " | ".join(["0.500 (+0.200)"] * 5) + " |" in lines
    assert "| now | minilm | " + " | ".join(["0.500 (+0.050)"] * 5) + " |" in lines
    assert "| retrieval baseline (training split), old parser | minilm | " + " | ".join(["0.300"] * 5) + " |" in lines


def test_the_au_memory_trains_last_and_leaves_every_other_tensor_as_it_was(tiny_config, tmp_path):
    from model_runtime.generators.learned import load_learned

    plain = train(tiny_config, tmp_path / "plain", seed=0, work_dir=tmp_path / "w1", progress=False, evaluate=False)
    config = tmp_path / "memory.toml"
    config.write_text(TINY_TOML + "[memory]\nenabled = true\n")
    summary = train(config, tmp_path / "out", seed=0, work_dir=tmp_path / "w2", progress=False, evaluate=False)
    with_memory, without = load_file(summary["weights"]), load_file(plain["weights"])
    assert {k for k in with_memory if not k.startswith("memory.")} == set(without)
    assert all(np.array_equal(with_memory[k].numpy(), without[k].numpy()) for k in without)
    assert 0.3 < summary["memory"]["novelty"] < 0.95 and summary["memory"]["phrases"] == with_memory["memory.keys"].shape[0]
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert "An AU memory" in card
    assert f"{sum(v.numel() for v in with_memory.values()):,} values stored" in card  # the phrase table too
    assert "values stored" not in (tmp_path / "plain" / "MODEL_CARD.md").read_text()
    gen = load_learned(summary["weights"], device="cpu")
    assert gen.model.memory is not None
    assert abs(float(gen.model.memory.novelty) - summary["memory"]["novelty"]) < 1e-4
