"""How the AU head's AUs enter the key, measured on the shipped weights without retraining (issue 13, item 8).

Run: .venv/bin/python benchmarks/bench_au_compose.py

Each candidate is a run-time composition of the shipped decoder's key with the shipped AU head: "off" (decoder
alone), "union" (the shipped mode), "gate" (union, and decoder channels faded by the likeliest AU driving them),
"hardgate" (union, decoder channels kept only where a present AU drives them), "au" (the AU head's face alone), each
at AU presence thresholds 0.2-0.8; and "neighbours": the AU tables of the k nearest training concepts in the model's
own text latent, softmax-weighted, alone or averaged with the head's probabilities.

The choice is made on a validation split of training concepts only (`validation_items`, deterministic: a quarter of
the training concepts by a hash of their names, their training phrases in the held-out concepts' templates, none an
item of either evaluation split): the candidate with the best AU F1 there. Every candidate is then measured once on
the held-out concepts (`i2fet evaluate`'s 128 items, seed 0) and printed, chosen or not. The AU head and the text
latent were trained on the validation concepts, so validation favours trusting them; the neighbour candidates leave
each validation item's own concept out of the vote. Exits 1 when the chosen candidate misses the goal: AU precision and
recall both >= 0.10 above the retrieval baseline on the held-out concepts.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gates import Gates, machine_load  # noqa: E402

MARGIN = 0.10
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MODES = ("off", "union", "gate", "hardgate", "au")
NEIGHBOURS = (("neighbours", 0.5, 1, 0.05), ("neighbours", 0.5, 5, 0.05), ("neighbours", 0.4, 5, 0.05),
              ("neighbours", 0.5, 10, 0.1), ("head+neighbours", 0.5, 5, 0.05), ("head+neighbours", 0.4, 5, 0.05))


def validation_items(count: int = 256):
    """Training-concept items for choosing a run-time setting: no held-out concept, no evaluation item."""
    from model_runtime.training import arkit_data as D

    evaluated = {i.instruction for split in D.SPLITS for i in D.heldout_items(split)}
    items, seen = [], set()
    for concept in D.training_concepts():
        if concept.name == "neutral" or D.stable_hash(f"validation|{concept.name}") % 4:
            continue
        for phrase in D.training_phrases()[concept.name]:
            for template in D.TRAIN_TEMPLATES[:6] + D.HELDOUT_TEMPLATES:
                text = template.format(p=phrase)
                if text in evaluated or text in seen or D._single_segment(text) is None:
                    continue
                seen.add(text)
                items.append(D.EvalItem(text, concept.name, concept.family, "validation"))
    keep = sorted(np.random.default_rng(0).permutation(len(items))[:count])
    return [items[i] for i in keep]


def au_scores(runtime, items) -> tuple[float, float]:
    """Mean AU precision and recall of the apexes, exactly as `i2fet evaluate` row a computes them."""
    from model_runtime.evaluation.report import _apexes, apex_au_scores

    anims = runtime.generate_batch([i.instruction for i in items], fps=30, seed=0)
    scores = apex_au_scores(_apexes(anims), items)
    return float(scores[:, 0].mean()), float(scores[:, 1].mean())


class Neighbours:
    """AU presence and intensity voted by the nearest training concepts in the learned text latent."""

    def __init__(self, generator):
        import torch

        from model_runtime.generators.base import ConceptIndex
        from model_runtime.models.au_space import concept_au_targets
        from model_runtime.training.arkit_data import train_split_concepts

        concepts = train_split_concepts()
        self.names = [c.name for c in concepts]
        self.index = ConceptIndex(generator.encoder, concepts=concepts, embed=generator._text_latents, cache=False)
        targets = [concept_au_targets(c.name) for c in concepts]
        self.presence = torch.as_tensor(np.stack([t[0] for t in targets]))
        self.intensity = torch.as_tensor(np.stack([t[1] for t in targets]))
        self.exclude: list[int] | None = None  # per row, a concept left out of the vote (validation: its own)

    def vote(self, latent, k: int, tau: float):
        import torch

        scores = torch.as_tensor(self.index.concept_scores(latent.float().cpu().numpy()))
        if self.exclude is not None:
            scores[torch.arange(len(scores)), torch.as_tensor(self.exclude[:len(scores)])] = -np.inf
        top, idx = scores.topk(k, dim=1)
        w = torch.softmax(top / tau, dim=1)[:, :, None]
        core = (self.intensity[idx] > 0).float()
        intensity = (w * self.intensity[idx]).sum(1) / (w * core).sum(1).clamp_min(1e-6)
        return (w * self.presence[idx]).sum(1), intensity


def composer(mode: str, threshold: float, neighbours: Neighbours | None = None, k: int = 0, tau: float = 0.0):
    """A replacement for KeyGenerator.compose implementing one candidate."""
    import torch
    import torch.nn.functional as F

    def compose(self, decoded, pooled_text, side):
        logits, intensity = self.au_predict(pooled_text)
        prob = torch.sigmoid(logits)
        if mode == "off":
            return decoded
        if neighbours is not None:
            latent = F.normalize(self.ifed.text_proj(pooled_text), dim=-1)
            p_nn, i_nn = neighbours.vote(latent, k, tau)
            prob, intensity = (p_nn, i_nn) if mode == "neighbours" else (0.5 * (prob + p_nn), intensity)
        matrix = self.au_matrix[side]
        composed = torch.einsum("ba,bac->bc", (prob > threshold).to(decoded.dtype) * intensity, matrix).clamp(0, 1)
        if mode in ("au", "neighbours", "head+neighbours"):
            return composed
        if mode == "gate":
            decoded = decoded * ((prob[:, :, None] * (matrix > 0)).amax(1) / threshold).clamp(max=1.0)
        elif mode == "hardgate":
            decoded = decoded * ((prob[:, :, None] > threshold) & (matrix > 0)).any(1).to(decoded.dtype)
        return torch.maximum(decoded, composed)

    return compose


@contextlib.contextmanager
def composing(compose):
    from model_runtime.models.generator import KeyGenerator

    shipped = KeyGenerator.compose
    KeyGenerator.compose = compose
    try:
        yield
    finally:
        KeyGenerator.compose = shipped


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    from model_runtime.evaluation.report import load_model
    from model_runtime.training.arkit_data import heldout_items

    print(machine_load())
    learned, baseline = load_model("i2fet", "cpu"), load_model("baseline", "cpu")
    validation, held_out = validation_items(), heldout_items("heldout_concepts", n=128, seed=0)
    neighbours = Neighbours(learned.generator)
    base_val, base_held = au_scores(baseline, validation), au_scores(baseline, held_out)
    print(f"validation: {len(validation)} items of {len({i.concept for i in validation})} training concepts; "
          f"held out: {len(held_out)} items")
    print(f"{'candidate':<34} {'val P':>6} {'val R':>6} {'val F1':>7} {'held P':>7} {'held R':>7}  margins vs baseline")
    print(f"{'retrieval baseline (training split)':<34} {base_val[0]:>6.3f} {base_val[1]:>6.3f} {'':>7} "
          f"{base_held[0]:>7.3f} {base_held[1]:>7.3f}")
    candidates = [(f"{m} {t}", composer(m, t), False) for m in MODES for t in THRESHOLDS if m != "off" or t == 0.5]
    candidates += [(f"{m} {t} k={k} tau={tau}", composer(m, t, neighbours, k, tau), True) for m, t, k, tau in NEIGHBOURS]
    rows = []
    for name, compose, leave_own_out in candidates:
        with composing(compose):
            neighbours.exclude = [neighbours.names.index(i.concept) for i in validation] if leave_own_out else None
            val = au_scores(learned, validation)
            neighbours.exclude = None
            held = au_scores(learned, held_out)
        f1 = 2 * val[0] * val[1] / max(val[0] + val[1], 1e-9)
        rows.append((name, val, f1, held))
        print(f"{name:<34} {val[0]:>6.3f} {val[1]:>6.3f} {f1:>7.3f} {held[0]:>7.3f} {held[1]:>7.3f}  "
              f"{held[0] - base_held[0]:+.3f} / {held[1] - base_held[1]:+.3f}", flush=True)
    name, _, _, held = max(rows, key=lambda r: r[2])
    print(f"chosen on validation (best AU F1): {name}")
    gates = Gates()
    gates.at_least(f"AU precision above the baseline, held-out concepts ({name})", held[0] - base_held[0], MARGIN)
    gates.at_least(f"AU recall above the baseline, held-out concepts ({name})", held[1] - base_held[1], MARGIN)
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
