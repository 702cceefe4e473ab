"""The model card training writes beside the weights: what the model is, what data made it (generated, with the
held-out split), how to reproduce it, its training curve and sanity numbers, what it was compared with, and its limits.

The comparison comes from `comparison.json` beside the weights when there is one: the `i2fet evaluate` numbers on the
held-out concepts of every configuration and text encoder measured before this one shipped (written from those runs'
JSON reports, not by training), rendered by `comparison_lines` here and in EVALUATION.txt. The retrieval baseline reads
the text encoder too, so each row is set against the baseline of its own encoder: `baseline` is MiniLM's, `baselines`
holds the others' by encoder name. A row measured before a change to the run time that moved both models' scores
names, in its `baseline`, the entry of `earlier_baselines` it was measured against."""

from __future__ import annotations

import json
from pathlib import Path

from ..models.config import I2FETConfig
from ..paths import atomic_output
from .arkit_data import HELDOUT_CONCEPTS, HELDOUT_TEMPLATES

COMPARISON = "comparison.json"
_COMPOSE = {"off": "alone (the AU head only shapes the text features)",
            "union": "united with every AU the head finds present, at the head's intensity",
            "gate": "united with every AU the head finds present, its channels that no likely AU drives faded"}
_COLUMNS = (("au_precision", "AU prec."), ("au_recall", "AU recall"), ("emotion_accuracy", "FER acc."),
            ("r_precision_top1", "R-prec. top-1"), ("r_precision_top3", "R-prec. top-3"))


def comparison_lines(path: Path) -> list[str]:
    """Markdown lines: the held-out-concept numbers of every configuration in `path` (comparison.json) against the
    retrieval baseline of the same text encoder, and the text encoders considered; nothing when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    baselines = {"minilm": data["baseline"], **data.get("baselines", {})}
    earlier = data.get("earlier_baselines", {})
    lines = ["## What was compared", "", data.get("note", ""), "",
             "| configuration | encoder | " + " | ".join(label for _, label in _COLUMNS) + " |",
             "|---|---|" + "---|" * len(_COLUMNS)]
    for row in data["rows"]:
        base = earlier[row["baseline"]] if "baseline" in row else baselines[row["encoder"]]
        cells = [f"{row[key]:.3f} ({row[key] - base[key]:+.3f})" for key, _ in _COLUMNS]
        name = f"**{row['name']}** (shipped)" if row.get("shipped") else row["name"]
        lines.append(f"| {name} | {row['encoder']} | " + " | ".join(cells) + " |")
    for encoder, base in baselines.items():
        lines.append(f"| retrieval baseline (training split) | {encoder} | "
                     + " | ".join(f"{base[key]:.3f}" for key, _ in _COLUMNS) + " |")
    for when, base in earlier.items():  # rows measured before the run time changed both models' scores
        lines.append(f"| retrieval baseline (training split), {when} | minilm | "
                     + " | ".join(f"{base[key]:.3f}" for key, _ in _COLUMNS) + " |")
    same = " of the same text encoder" if len(baselines) > 1 else ""
    lines += ["", f"Held-out concepts, `i2fet evaluate --n 128` (seed 0); in brackets the difference to the baseline{same}.",
              ""]
    for paragraph in data.get("candidates", []):  # designs measured and reported in prose (some not in the table)
        lines += [paragraph, ""]
    if data.get("encoders"):
        lines += ["Text encoders considered:", ""]
        lines += [f"- {e['name']}: {e['finding']}" for e in data["encoders"]]
        lines.append("")
    return lines


def _heads(n: int) -> str:
    return "a small AU head" if n == 1 else f"{n} small AU heads (each fitted from its own seed)"


def _heads_opinion(n: int) -> str:
    return "head's" if n == 1 else "heads' mean"


def _memory_lines(cfg: I2FETConfig, memory: dict | None) -> list[str]:
    if not cfg.memory.enabled or not memory:
        return []
    m = cfg.memory
    return [f"An AU memory (models/au_memory.py) holds the frozen sentence embeddings of the {memory['phrases']} training",
            f"phrases of {memory['concepts']} concepts and their core AUs, and {_heads(m.heads)} on the same embedding. A",
            f"text whose nearest training phrase has a cosine below {memory['novelty']:.4f} (calibrated on the training",
            f"phrases: it tells a new concept from a new phrasing with balanced accuracy "
            f"{memory['novelty_balanced_accuracy']:.3f}) takes its key",
            f"from the memory: the AUs of its {m.top_k} nearest concepts (softmax of cosine / {m.temperature:g}) weighted",
            f"{m.vote:g} against the {_heads_opinion(m.heads)} {1 - m.vote:g}, those above {m.present:g}"
            + (f" (or, when none is, those at least {m.fallback:g} times the strongest)" if m.fallback else "")
            + " united into the decoder's channels that they drive; other texts",
            "keep the key above" + (", only in the channels such AUs drive (and those no AU of the memory speaks for:"
                                    " a wink's closed eye, the jaw and mouth sideways)." if m.prune_known else ".")
            + (f" Every text it holds or reads is embedded in the frame {m.frame!r}"
               + (", the texts it reads through a linear map fitted from their plain to their framed embeddings (ridge"
                  " regression over some 21,000 English words and the training phrases)." if m.frame_map else ".")
               if m.frame != "{}" else "")
            + (f" It also reads every text through WordNet's definitions of its words ({m.gloss_words:,} words,"
               " glosses.py): their mean sentence embedding added to the text's own, with phrase keys and"
               f" {_heads(m.heads)} of its own; the AU probabilities are the means of the plain and the glossed"
               " reading's." if m.glosses else "")
            + " Trained last, on frozen features, so the other tensors are the same with or without it."]


def write_model_card(out_dir: Path, cfg: I2FETConfig, summary: dict, config_path: Path) -> Path:
    root = Path(__file__).resolve().parents[2]
    try:
        shown = config_path.resolve().relative_to(root).as_posix()
    except ValueError:
        shown = config_path.as_posix()
    hist = summary.get("history", [])
    gen, tc = cfg.generator, cfg.train
    curve = [h for h in hist if h["step"] in {hist[0]["step"], hist[len(hist) // 4]["step"], hist[len(hist) // 2]["step"],
                                                hist[-1]["step"]}] if hist else []
    lines = [
        f"# Model card: {cfg.name}",
        "",
        "Learned I2FET generator for the ARKit-52 expression space with the all-MiniLM-L6-v2 text encoder (frozen).",
        "IFED (dual-branch transformer: text tokens / per-frame expressions, cross-attention, InfoNCE-aligned shared",
        "latent), a CVAE key-expression generator trained with weight-space and vertex-reconstruction losses on the",
        "default head (exact Gram form of the mesh distance), and a learned per-channel transition model.",
        *([f"An AU head reads the pooled text and predicts which FACS action units it names (presence, intensity;",
           f"loss weight {tc.au_loss:g}); at run time the key is the decoder's sample {_COMPOSE[gen.au_compose]}."]
          if gen.au_head else []),
        *_memory_lines(cfg, summary.get("memory")),
        "",
        "## Files",
        f"- `{cfg.name}.safetensors`: float32 weights"
        + (" (the AU memory's gloss embeddings 8-bit)" if cfg.memory.enabled and cfg.memory.glosses else "")
        + ", config and encoder facts in the safetensors metadata.",
        f"- `{cfg.name}.json`: sha256 of the weights file; the loader verifies it.",
        f"- sha256: `{summary.get('sha256', '')}`",
        f"- size: {summary.get('bytes', 0):,} bytes; {summary.get('parameters', 0):,} parameters"
        + (f", {summary['stored']:,} values stored with the buffers (the AU memory's phrase table)"
           if summary.get("stored", 0) > summary.get("parameters", 0) else ""),
        "",
        "## Data (generated by the project, no external data set)",
        "- Instructions: 20 templates x every phrase and label of the knowledge-base concepts, plus decorated",
        "  variants (intensity, speed, manner, timing words; one-sided 'on the left/right'), and two-part sequences",
        "  ('X, then Y', 'from X to Y', optional 'then return to neutral'), all parsed by the runtime's parser.",
        *([f"- Texts naming action units by their FACS names: every AU alone and unions of two or three AUs on",
           f"  different channels ('lid tightener plus lip pressor'), {tc.au_texts} in all, the AUs as target."]
          if tc.au_texts else []),
        *(["- Every training phrase with its concept's core AUs named: 'look happy showing cheek raiser plus lip",
           "  corner puller plus lips part'."] if tc.describe else []),
        f"- Targets: `sample_concept_weights` (core AUs always, variant AUs with p={tc.variant_prob:g}, intensity"
        " jitter 15%,",
        "  slight asymmetry; sides mirrored), pre-sampled per concept and side.",
        "- Dynamics: quadratic ease-in-out with per-channel time warps by face region (brows lead, jaw and Duchenne cheek",
        "  lag) scaled by speed/manner, plus occasional blinks.",
        f"- Held out (never trained on): concepts {', '.join(HELDOUT_CONCEPTS)}; one phrase of each concept with >= 5",
        f"  phrases; templates {', '.join(repr(t) for t in HELDOUT_TEMPLATES)}. "
        "See `model_runtime/training/arkit_data.py`.",
        "",
        "## Training",
        "```",
        f".venv/bin/i2fet train --config {shown} --seed {summary['seed']} --no-resume",
        "```",
        f"- seed {summary['seed']}, {summary['steps']} steps, batch {cfg.train.batch_size}, device {summary['device']},"
        f" wall time {summary['wall_s']:.0f} s (2 shared CPU cores).",
        "- On CPU training runs on one torch thread, so a rerun gives the same tensors on the same kind of CPU",
        "  (floating-point sums depend on the thread count and on the CPU's vector instructions; one thread was also the",
        "  faster choice on the loaded machine).",
        *(["- `au_compose` acts only at run time (training never composes), so one trained file serves every mode:",
           "  the modes below were measured on the same tensors."] if gen.au_head else []),
        f"- loss curve (step: total / weight / vertex / prior-weight / kl / nce / transition"
        f"{' / au' if gen.au_head and tc.au_loss else ''}):",
    ]
    for h in curve:
        lines.append(f"  - {h['step']}: {h['total']:.4f} / {h['weight']:.4f} / {h['vertex']:.4f} / "
                     f"{h['prior_weight']:.4f} / {h['kl']:.3f} / {h['nce']:.3f} / {h['transition']:.5f}"
                     + (f" / {h['au']:.3f}" if "au" in h else ""))
    sanity = summary.get("sanity")
    if sanity:
        lines += ["", "## Sanity numbers written by training (a quick look; see Metrics for the real evaluation)",
                  "- family_acc_learned: family of the label the model gives (nearest knowledge-base phrase in the",
                  "  IFED shared latent, zero-shot style: the knowledge base, held-out concepts included, is there at",
                  "  run time; the model never trained on those phrases).",
                  "- *_baseline: the retrieval baseline over the whole knowledge base (held-out phrases verbatim",
                  "  included); *_baseline_train_split: the same retrieval over the training split only.",
                  "- key_l2: L2 between the generated key (latent at the prior mean) and the concept's core prototype;",
                  "  seed_spread_l2: L2 between two latent samples; jerk_ratio_vs_linear: mean |third difference| of",
                  "  15-frame transitions with 5-frame holds against linear interpolation; half_way_frame_spread: frames",
                  "  between the first and last moving channel to reach half way.",
                  "```", json.dumps(sanity, indent=2), "```"]
    lines += ["", "## Metrics", "",
              "`EVALUATION.txt` beside this card holds the `i2fet evaluate --n 128` table (seed 0) for these weights,",
              "the learned model and the retrieval baseline side by side; rerun it after retraining.", "",
              *comparison_lines(out_dir / COMPARISON),
              "## Limits",
              "- On words the project did not write (`benchmarks/bench_language_real.py`: WordNet 3.0's emotion",
              "  adjectives as 'look {word}', the family read from the apex's AUs), check it against the retrieval",
              "  baseline after retraining: O, shipped on 2026-12-05, reads 0.606 of 155 words right, the baseline",
              "  0.535 (M before it 0.439). O reads WordNet's definitions, and these words' family labels follow",
              "  WordNet's synset clusters, so that benchmark is no longer independent of it; nor are the WordNet",
              "  face-text sets of `benchmarks/bench_language_wordnet.py`.",
              "- Trained only on the project's synthetic, knowledge-base-derived data: it knows what the FACS",
              "  tables and their phrases say, not how real people move.",
              "- Transitions follow a modelled (not measured) onset order.",
              "- Held-out concepts are generated from their phrases' meaning: their AUs are those the trained words",
              "  nearest in meaning show, not their exact FACS prototypes; a word the text encoder places near another",
              "  family comes out as that family.", ""]
    path = Path(out_dir) / "MODEL_CARD.md"
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines))
    path.chmod(0o644)
    return path
