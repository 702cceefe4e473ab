"""benchmarks/bench_concept_cv.py's summary: per-concept averaging across folds and its gates, on made-up fold files."""

from __future__ import annotations

import json

import numpy as np

from benchmarks import bench_concept_cv as cv


def _fold(fold: int, concepts: list[str], learned: float, baseline: float, phrasing_gap: float) -> dict:
    def rows(names, gap):
        out = {"concept": [], **{g: [] for g in cv.GENERATORS}, **{f"{g}_variants_allowed": [] for g in cv.GENERATORS}}
        for k, name in enumerate(names):
            for item in range(1 + k % 3):  # concepts with more items must not weigh more
                out["concept"].append(name)
                out["learned"].append([baseline + gap + 0.01 * item, baseline + gap])
                out["decoder"].append([baseline, baseline])
                out["baseline"].append([baseline + 0.01 * item, baseline])
                for g in cv.GENERATORS:
                    out[f"{g}_variants_allowed"].append(0.9)
        return out

    return {"fold": fold, "concepts": concepts,
            "splits": {"heldout_concepts": rows(concepts, learned - baseline),
                       "heldout_phrasings": rows([f"p{k}" for k in range(5)], phrasing_gap)}}


def _write(tmp_path, learned_margin: float, phrasing_gap: float):
    for k in range(cv.FOLDS):
        names = [f"c{k}_{j}" for j in range(4)]
        (tmp_path / f"fold-{k}.json").write_text(json.dumps(_fold(k, names, 0.4 + learned_margin, 0.4, phrasing_gap)))


def test_the_summary_passes_only_when_every_margin_reaches_its_goal(tmp_path, capsys):
    _write(tmp_path, 0.12, 0.01)
    assert cv.summarize(tmp_path) == 0
    out = capsys.readouterr().out
    assert "(16 concepts, each weighted the same)" in out and "(5 concepts, each weighted the same)" in out
    assert "+0.120" in out
    _write(tmp_path, 0.08, 0.01)
    assert cv.summarize(tmp_path) == 1
    _write(tmp_path, 0.12, -0.02)
    assert cv.summarize(tmp_path) == 1


def test_a_phrasing_scored_by_several_folds_counts_once_as_their_mean(tmp_path):
    _write(tmp_path, 0.12, 0.01)
    results = [json.loads((tmp_path / f"fold-{k}.json").read_text()) for k in range(cv.FOLDS)]
    results[0]["splits"]["heldout_phrasings"]["learned"] = [[1.0, 1.0]] * len(
        results[0]["splits"]["heldout_phrasings"]["learned"])
    names, table = cv.per_concept(results, "heldout_phrasings", "learned")
    assert names == [f"p{k}" for k in range(5)]
    p0 = [0.4 + 0.01 + 0.01 * i for i in range(1)]  # p0 has one item per fold
    assert np.isclose(table[0, 0], (1.0 + 3 * p0[0]) / 4)


def test_scoring_again_needs_the_folds_one_weights_file(tmp_path, capsys):
    assert cv.main(["--fold", "0", "--work", str(tmp_path), "--score-only"]) == 2
    assert "Found 0 weights files" in capsys.readouterr().err
