"""WordNet's definitions as the AU memory's dictionary (model_runtime/glosses.py, data/wordnet_glosses.tsv.gz) and how
the memory reads them (AUMemory.gloss_vectors / with_glosses, and the training stage's numpy twin)."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
import torch

from benchmarks import extract_wordnet_glosses as X
from model_runtime import glosses as G
from model_runtime.models.au_memory import AUMemory, MemoryConfig
from model_runtime.training import au_memory_stage as S


def _lines() -> list[tuple[str, str]]:
    with gzip.open(G.GLOSSES, "rt", encoding="utf-8") as handle:
        return [tuple(line.rstrip("\n").split("\t")) for line in handle]


def test_the_file_holds_a_definition_for_each_word_and_forms_that_point_at_words():
    rows = _lines()
    words = [w for w, g in rows if not g.startswith("=")]
    assert len(words) == len(set(words)) == len(G.vocabulary()) > 20_000
    for word, gloss in rows:
        assert X.WORD.match(word), word
        if gloss.startswith("="):
            assert gloss[1:] in set(G.vocabulary())
        else:
            assert gloss and '"' not in gloss  # examples removed, none left empty
    assert G.all_glosses()[G.vocabulary().index("sneer")].startswith("express through a scornful smile")


@pytest.mark.parametrize("form, word", [
    ("sneer", "sneer"), ("sneered", "sneer"), ("smirking", "smirk"), ("scowls", "scowl"), ("angrier", "angry"),
    ("shook", "shake"), ("frowned", "frown"), ("happiest", "happy"), ("grins", "grin")])
def test_lemma_finds_the_word_with_a_definition(form, word):
    assert G.lemma(form) == word


def test_lemma_of_a_word_wordnet_lacks_is_none():
    assert G.lemma("xqzzt") is None and G.lemma("xqzzting") is None


def test_gloss_rows_read_content_words_once_and_skip_instruction_words():
    vocab = G.vocabulary()
    assert [vocab[r] for r in G.gloss_rows("convey a sneer")] == ["sneer"]
    assert [vocab[r] for r in G.gloss_rows("the avatar displays a sneer, sneers")] == ["sneer"]
    assert "head" not in [vocab[r] for r in G.gloss_rows("shook the head")]  # a face part says nothing of its own
    assert G.gloss_rows("xqzzt") == []


def _memory(words: int, dim: int = 8, weight: float = 1.0) -> AUMemory:
    cfg = MemoryConfig(enabled=True, phrases=2, concepts=1, longest=2, text_dim=dim, glosses=True,
                       gloss_words=words, gloss_weight=weight)
    memory = AUMemory(cfg)
    rng = np.random.default_rng(0)
    table = rng.normal(size=(words, dim)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    scale = np.abs(table).max(1) / 127.0
    with torch.no_grad():
        memory.gloss_codes.copy_(torch.as_tensor(np.round(table / scale[:, None]).astype(np.int8)))
        memory.gloss_scale.copy_(torch.as_tensor(scale.astype(np.float32)))
    return memory


def test_the_run_time_reads_glosses_as_the_training_stage_embedded_them(monkeypatch):
    """The stage's numpy reading (keys and probes) and the run time's torch reading must agree, or the memory meets
    texts in another space than its phrases."""
    memory = _memory(words=5, weight=0.7)
    rows = {"a": [1, 3], "b": [], "c": [4]}
    monkeypatch.setattr(S, "gloss_rows", lambda text: rows[text])
    rng = np.random.default_rng(1)
    sentences = rng.normal(size=(3, 8)).astype(np.float32)
    sentences /= np.linalg.norm(sentences, axis=1, keepdims=True)
    stage = S._with_glosses(sentences, ["a", "b", "c"], memory.gloss_codes.numpy(), memory.gloss_scale.numpy(), 0.7)
    glosses = memory.gloss_vectors([rows[t] for t in "abc"])
    run_time = memory.with_glosses(torch.as_tensor(sentences), glosses).numpy()
    np.testing.assert_allclose(stage, run_time, atol=1e-6)
    np.testing.assert_allclose(run_time[1], sentences[1], atol=1e-7)  # no glossed word: the text as it was
    assert not np.allclose(run_time[0], sentences[0], atol=1e-2)
    assert torch.all(glosses[1] == 0)


def _two_readings() -> AUMemory:
    """A memory with glosses whose plain keys point at concept 'a' (AU12) and whose glossed keys point at 'b' (AU4),
    with heads that say nothing: the vote alone speaks in each reading."""
    from model_runtime.models.au_space import AUS

    memory = AUMemory(MemoryConfig(enabled=True, phrases=2, concepts=2, longest=1, text_dim=4, top_k=1, vote=1.0,
                                   glosses=True, gloss_words=1)).eval()
    with torch.no_grad():
        memory.keys.copy_(torch.eye(4)[:2])
        memory.gloss_keys.copy_(torch.eye(4)[[1, 0]])
        memory.groups.copy_(torch.tensor([[0], [1]]))
        memory.core[0, AUS.index(12)] = 1.0
        memory.core[1, AUS.index(4)] = 1.0
        memory.intensity.copy_(memory.core * 0.6)
        memory.novelty.fill_(0.5)
    return memory


def test_a_memory_with_glosses_averages_its_plain_and_glossed_readings():
    from model_runtime.models.au_space import AUS

    memory = _two_readings()
    x = torch.eye(4)[:1]  # phrase 0 in the plain reading: 'a'; in the glossed reading the same vector finds 'b'
    with torch.no_grad():
        plain, _, novel = memory.predict(x)
        both, intensity, novel_both = memory.predict(x, x)
    assert plain[0, AUS.index(12)] == pytest.approx(1.0) and plain[0, AUS.index(4)] == pytest.approx(0.0)
    assert both[0, AUS.index(12)] == pytest.approx(0.5) and both[0, AUS.index(4)] == pytest.approx(0.5)
    assert novel.tolist() == novel_both.tolist() == [False]  # novelty is the plain reading's


def test_a_memory_with_glosses_refuses_to_read_without_them():
    memory = _two_readings()
    with pytest.raises(ValueError, match="glosses"):
        memory.read(torch.eye(4)[:1], torch.zeros(1, dtype=torch.long))


def test_a_gloss_table_made_for_another_dictionary_is_refused():
    memory = _memory(words=5)
    with torch.no_grad():
        memory.groups.copy_(torch.as_tensor([[0, 1]]))
    problem = memory.problem()
    assert problem is not None and re.search(r"gloss table has 5 rows", problem)


def test_the_stage_quantizes_the_table_within_half_a_step(monkeypatch):
    class Encoder:  # sentence embeddings of the glosses: any fixed unit vectors will do for the arithmetic
        def encode(self, texts):
            rng = np.random.default_rng(len(texts))
            rows = rng.normal(size=(len(texts), 8)).astype(np.float32)

            class Out:
                pooled = torch.as_tensor(rows / np.linalg.norm(rows, axis=1, keepdims=True))
            return Out()

    monkeypatch.setattr(S, "all_glosses", lambda: tuple(f"gloss {i}" for i in range(10)))
    codes, scale = S.gloss_table(Encoder())
    table = Encoder().encode(["x"] * 10).pooled.numpy()
    assert codes.dtype == np.int8 and np.abs(codes).max() == 127
    assert np.all(np.abs(codes * scale[:, None] - table) <= scale[:, None] * 0.5 + 1e-7)


def test_the_model_card_names_the_glossed_reading_only_when_the_memory_has_one():
    from model_runtime.models.config import config_from_dict
    from model_runtime.training.model_card import _memory_lines

    facts = {"phrases": 10, "concepts": 2, "novelty": 0.7, "novelty_balanced_accuracy": 0.7}
    plain = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True}}), facts))
    glossed = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True, "glosses": True,
                                                                  "gloss_words": 26200}}), facts))
    assert "WordNet" not in plain
    assert "WordNet's definitions of its words (26,200 words" in glossed


def _tiny_wordnet(folder):
    """A WordNet 3.0 layout small enough to read by eye: lexicographer files 00 adj.all, 06 noun.artifact,
    12 noun.feeling, 29 verb.body."""
    (folder / "lexnames").write_text("00\tadj.all\t3\n06\tnoun.artifact\t1\n12\tnoun.feeling\t1\n29\tverb.body\t2\n")
    (folder / "data.adj").write_text(
        "  1 licence header line\n"
        '00000010 00 a 01 glum 0 000 | moody and melancholic; "a glum face"\n'
        '00000020 00 a 01 grim 0 000 | harshly uninviting; "grim silence" - A. Writer; stern\n')
    (folder / "data.noun").write_text(
        "  1 licence header line\n"
        "00000100 12 n 01 glee 0 000 | great merriment\n"
        "00000200 06 n 01 anvil 0 000 | a heavy block of iron\n"
        '00000300 06 n 01 grin 0 000 | a tool for grinning; "unclosed example\n'
        "00000400 12 n 01 grin 0 000 | a wide smile\n")
    (folder / "data.verb").write_text(
        "  1 licence header line\n"
        "00001000 29 v 01 grin 0 000 | draw back the lips and reveal the teeth\n")
    (folder / "index.adj").write_text("  1 header\nglum a 1 0 1 0 00000010\ngrim a 1 0 1 0 00000020\n")
    (folder / "index.noun").write_text("  1 header\nanvil n 1 0 1 0 00000200\nglee n 1 0 1 0 00000100\n"
                                       "grin n 2 0 2 0 00000300 00000400\n")
    (folder / "index.verb").write_text("  1 header\ngrin v 1 0 1 0 00001000\n")
    (folder / "adj.exc").write_text("glummer glum\nbetter good\n")
    (folder / "noun.exc").write_text("")
    (folder / "verb.exc").write_text("grinnt grin\n")


def test_the_extraction_keeps_face_words_and_their_first_senses_without_examples(tmp_path):
    _tiny_wordnet(tmp_path)
    glosses, forms = X.extract(tmp_path)
    assert "anvil" not in glosses  # an artifact only
    assert glosses["glum"] == "moody and melancholic"
    assert glosses["grim"] == "harshly uninviting; stern"  # the example and its author go, the rest stays
    # a word in two parts of speech: the verb's first sense, then the noun's (an artifact sense, first by frequency,
    # still stands for the noun: the word was kept for its feeling sense), examples cut even when left unclosed
    assert glosses["grin"] == "draw back the lips and reveal the teeth; a tool for grinning"
    assert forms == {"glummer": "glum", "grinnt": "grin"}  # "better": its lemma has no gloss here


def test_a_damaged_dictionary_file_is_one_clear_sentence(tmp_path, monkeypatch):
    from model_runtime.errors import WeightsError

    broken = tmp_path / "wordnet_glosses.tsv.gz"
    broken.write_bytes(b"not gzip at all")
    monkeypatch.setattr(G, "GLOSSES", broken)
    G._table.cache_clear()
    try:
        with pytest.raises(WeightsError, match="cannot be read .*reinstall"):
            G.vocabulary()
    finally:
        monkeypatch.undo()
        G._table.cache_clear()
    assert len(G.vocabulary()) > 20_000
