"""Roget's 1911 emotion words for the AU memory (model_runtime/data/roget_emotions.tsv) and the rules that extracted
them (benchmarks/extract_roget_emotions.py)."""

from __future__ import annotations

import json
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from benchmarks import extract_roget_emotions as X
from model_runtime.knowledge import ALIASES, all_concepts, get_concept
from model_runtime.rigs.untrusted_arrays import UntrustedFileError
from model_runtime.training import arkit_data as D
from model_runtime.training.au_memory_stage import memory_phrases
from model_runtime.training.roget import ROGET, roget_phrases

TESTS_DATA = Path(__file__).resolve().parent / "data"


def _rows() -> list[list[str]]:
    return [line.split("\t") for line in ROGET.read_text(encoding="utf-8").splitlines()[1:]]


def test_every_row_names_a_concept_and_a_phrase_a_user_could_type():
    rows = _rows()
    assert len(rows) > 500 and all(len(r) == 3 for r in rows)
    assert {r[0] for r in rows} <= {c.name for c in all_concepts()}
    for concept, category, phrase in rows:
        assert set(category.split("/")) <= set(X.CATEGORIES) and X.CATEGORIES[category.split("/")[0]] == concept
        assert re.fullmatch(r"[a-z' -]+", phrase) and 1 <= len(phrase.split()) <= 4
    phrases = [r[2] for r in rows]
    assert len(phrases) == len(set(phrases))  # one concept a phrase


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_no_roget_word_is_a_word_of_the_knowledge_base_or_of_a_test_set():
    """Checked by plain word equality, apart from the script's stems: a word the knowledge base or a benchmark uses
    must never reach the memory from Roget."""
    kb = {t.replace("_", " ") for c in all_concepts() for t in (c.name, c.label, *c.phrases)} | set(ALIASES)
    used = set().union(*(_words(t) for t in kb))
    for path in sorted(TESTS_DATA.glob("**/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            used |= set().union(*(_words(str(item[k])) for k in ("text", "word") if k in item))
    from model_runtime.actions import is_content_word

    clashes = sorted({w for r in _rows() for w in _words(r[2]) if w in used and is_content_word(w) and len(w) > 2})
    assert clashes == []
    assert {"terrified", "gloomy", "furious"} <= used  # the check reads the sets it guards


def test_the_memory_holds_roget_words_only_under_training_concepts():
    plain, with_roget = memory_phrases(False), memory_phrases(True)
    extra = roget_phrases()
    assert set(plain) == set(with_roget) == {c.name for c in D.training_concepts()}
    for name, own in plain.items():
        assert with_roget[name] == own + extra.get(name, ())
    held = {p for n in D.HELDOUT_CONCEPTS for p in extra.get(n, ())}
    assert len(held) > 50  # optimism, disappointment and annoyance have Roget words
    assert not held & {p for v in with_roget.values() for p in v}


def test_the_extractor_reads_plain_pickles_and_refuses_any_class(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_bytes(pickle.dumps({"cat0860": ["dread", "quail"]}, protocol=0))
    assert X._load(plain) == {"cat0860": ["dread", "quail"]}
    hostile = tmp_path / "hostile.txt"
    hostile.write_bytes(pickle.dumps(OrderedDict(a=1), protocol=0))
    with pytest.raises(UntrustedFileError, match="collections.OrderedDict"):
        X._load(hostile)


def test_a_word_sharing_a_stem_with_a_protected_word_is_dropped():
    protected = X._stems("terrified and gloomy")
    assert X._clashes(X._stems("terrify"), protected) and X._clashes(X._stems("gloom"), protected)
    assert not X._clashes(X._stems("woebegone"), protected) and not X._clashes(X._stems("quail"), protected)


def test_extraction_keeps_new_words_under_one_concept_and_drops_the_rest(tmp_path):
    names = {f"cat{i:04d}": name for i, name in enumerate(X.CATEGORIES)}
    code = {name: c for c, name in names.items()}
    words = {c: [] for c in names}
    words[code["FEAR"]] = ["quail", "Gorgon", "fee-faw-fum!", "make one's flesh creep slowly now", "aghast", "scared", "look up"]
    words[code["WONDER"]] = ["aghast", "daze"]
    (tmp_path / "thes_cat.txt").write_bytes(pickle.dumps(words, protocol=0))
    (tmp_path / "num_cat.txt").write_bytes(pickle.dumps(names, protocol=0))
    rows, dropped = X.extract(tmp_path)
    assert rows == [("fearful", "FEAR", "quail"), ("surprised", "WONDER", "daze")]
    assert dropped == {"not a typable phrase": 3, "under two concepts": 1, "no content word": 1,
                       "shares a stem with the knowledge base or a test set": 1}
    assert get_concept("fearful").family == "fear"


def test_each_concept_weighs_the_same_and_its_roget_words_weigh_what_its_own_phrases_do():
    from model_runtime.training.au_memory_stage import _roget_weights

    own = D.training_phrases()
    happy, wink = get_concept("happy"), get_concept("wink")
    n_happy, n_wink, n_extra = len(own["happy"]), len(own["wink"]), 40
    groups = np.full((2, n_happy + n_extra), -1)
    groups[0] = np.arange(n_happy + n_extra)
    groups[1, :n_wink] = np.arange(n_wink) + n_happy + n_extra
    weights = _roget_weights([happy, wink], groups)
    assert weights.shape == (n_happy + n_extra + n_wink,) and weights.mean() == pytest.approx(1.0)
    assert weights[groups[0]].sum() == pytest.approx(weights[groups[1, :n_wink]].sum())
    assert weights[:n_happy].sum() == pytest.approx(weights[n_happy:n_happy + n_extra].sum())
    assert weights[0] == pytest.approx(weights[n_happy - 1]) and weights[0] > weights[n_happy]


def test_a_phrase_of_weight_zero_does_not_move_the_head():
    """Two copies of each text, one saying the AU is present (weight 1) and one that it is not (weight 0): the
    weighted head learns presence; unweighted it is torn between them."""
    import torch

    from model_runtime.training.au_memory_stage import _fit_head

    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1).repeat(2, 1)
    presence = torch.cat([torch.ones(8, 3), torch.zeros(8, 3)])
    intensity, core = torch.full((16, 3), 0.5), torch.ones(16, 3)
    weights = torch.cat([torch.full((8, 1), 2.0), torch.zeros(8, 1)])

    def head():
        return torch.nn.Sequential(torch.nn.Dropout(0.0), torch.nn.Linear(16, 32), torch.nn.GELU(),
                                   torch.nn.Dropout(0.0), torch.nn.Linear(32, 6))

    weighted, plain = head(), head()
    _fit_head(weighted, 1, x, presence, intensity, core, weights)
    _fit_head(plain, 1, x, presence, intensity, core)
    with torch.no_grad():
        assert torch.sigmoid(weighted(x[:8]).chunk(2, -1)[0]).min() > 0.9
        assert (torch.sigmoid(plain(x[:8]).chunk(2, -1)[0]) - 0.5).abs().max() < 0.1


def test_the_roget_config_is_m_s_recipe_with_roget_words():
    from dataclasses import asdict

    from model_runtime.models.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    shipped = asdict(load_config(root / "i2fet-no-glosses.toml"))
    roget = asdict(load_config(root / "i2fet-roget.toml"))
    assert roget["memory"]["roget"] and not shipped["memory"]["roget"]
    for cfg in (shipped, roget):
        cfg.pop("name")
        cfg["memory"].pop("roget")
    assert roget == shipped
