"""The AU head: AU tables as matrices, how its prediction enters the key, its loss, and the AU-naming training texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_runtime.errors import InputError
from model_runtime.expression_space import AU_TO_CHANNELS, CHANNEL_INDEX
from model_runtime.instructions import parse_instruction
from model_runtime.knowledge import AUActivation, Concept, concept_weights, get_concept
from model_runtime.models.au_space import AU_INDEX, AUS, au_channel_matrix, concept_au_targets
from model_runtime.models.config import config_from_dict
from model_runtime.models.generator import GeneratorConfig, KeyGenerator
from model_runtime.models.ifed import IFEDConfig
from model_runtime.training import arkit_data as D
from model_runtime.training.train import au_loss


def _one_au(au: int, intensity: float, side: str = "both") -> Concept:
    return Concept(name=f"t{au}", label=f"t{au}", family="other", kind="action",
                   aus=(AUActivation(au, intensity, side),), extra=(), phrases=(), source="test")


def test_au_matrix_gives_the_knowledge_base_weights_of_each_au():
    matrix = au_channel_matrix()
    assert matrix.shape == (3, len(AUS), 52)
    for au in AUS:
        k = AU_INDEX[au]
        for s, side in enumerate(("both", "left", "right")):
            expected = concept_weights(_one_au(au, 0.6, side))
            assert np.allclose(np.clip(0.6 * matrix[s, k], 0, 1), expected, atol=1e-6), (au, side)
    assert not {30, 45, 46} & set(AUS)


def test_concept_au_targets_core_variants_and_same_pose():
    presence, intensity = concept_au_targets("sad")  # 1D+4B+15C, variants 6B+11B+17B
    assert {AUS[i] for i in np.flatnonzero(presence == 1.0)} == {1, 4, 15}
    assert {AUS[i] for i in np.flatnonzero(np.isclose(presence, 0.35))} == {6, 11, 17}
    assert np.isclose(intensity[AU_INDEX[1]], 0.8) and np.isclose(intensity[AU_INDEX[4]], 0.4)
    assert intensity[AU_INDEX[6]] == 0.0
    blink_presence, _ = concept_au_targets(get_concept("blink"))  # AU45 is one pose with AU43
    assert {AUS[i] for i in np.flatnonzero(blink_presence)} == {43}


def _generator(mode: str) -> KeyGenerator:
    torch.manual_seed(0)
    gen = KeyGenerator(IFEDConfig(d=16, heads=2, text_layers=1, expr_layers=1, cross_layers=1, latent=8),
                       GeneratorConfig(au_head=True, au_compose=mode))
    last = gen.au[-1]
    with torch.no_grad():  # the head says: AU12 present at 0.8, nothing else
        last.weight.zero_()
        logits = torch.full((len(AUS),), -10.0)
        logits[AU_INDEX[12]] = 10.0
        raw = torch.zeros(len(AUS))
        raw[AU_INDEX[12]] = float(np.log(0.8 / 0.2))
        last.bias.copy_(torch.cat([logits, raw]))
    return gen.eval()


@pytest.mark.parametrize("mode", ["off", "union", "gate"])
def test_compose_adds_present_aus_and_gate_fades_unsupported_channels(mode):
    gen = _generator(mode)
    decoded = torch.zeros(2, 52)
    decoded[:, CHANNEL_INDEX["browDownLeft"]] = 0.3
    decoded[:, CHANNEL_INDEX["mouthSmileLeft"]] = 0.9
    pooled = torch.randn(2, 16)
    with torch.no_grad():
        out = gen.compose(decoded, pooled, torch.tensor([0, 2])).numpy()
        right_only = gen.compose(torch.zeros(1, 52), pooled[:1], torch.tensor([2])).numpy()[0]
    smile_l, smile_r = CHANNEL_INDEX["mouthSmileLeft"], CHANNEL_INDEX["mouthSmileRight"]
    brow = CHANNEL_INDEX["browDownLeft"]
    if mode == "off":
        assert np.allclose(out, decoded.numpy())
        return
    assert np.isclose(out[0, smile_r], 0.8, atol=1e-4)  # AU12 both sides at the head's intensity
    assert np.isclose(out[0, smile_l], 0.9)  # the decoder's stronger value is kept: a union, not a sum
    assert np.isclose(out[1, smile_r], 0.8, atol=1e-4)  # a right-sided key: AU12 on the right
    if mode == "union":
        assert np.isclose(out[0, brow], 0.3) and out[1, smile_l] == pytest.approx(0.9)
    else:  # no likely AU drives browDown, nor the left corner of a right-sided key: faded out
        assert out[0, brow] < 1e-3 and out[1, smile_l] < 1e-3
    assert right_only[smile_r] == pytest.approx(0.8, abs=1e-4) and right_only[smile_l] == 0.0


def test_generate_uses_the_compose_mode():
    gen = _generator("union")
    tokens, mask = torch.randn(1, 4, 384), torch.ones(1, 4, dtype=torch.bool)
    out, _ = gen.generate(tokens, mask, torch.zeros(1, 52), torch.zeros(1, dtype=torch.long), torch.zeros(1, 16))
    assert out[0, CHANNEL_INDEX["mouthSmileRight"]] >= 0.8 - 1e-4


def test_bad_compose_mode_is_an_input_error():
    with pytest.raises(InputError, match="au_compose"):
        config_from_dict({"generator": {"au_head": True, "au_compose": "average"}})


def test_au_loss_prefers_the_right_aus():
    presence, intensity = (torch.as_tensor(a)[None] for a in concept_au_targets("happy"))
    right = au_loss(torch.where(presence > 0.5, 8.0, -8.0), intensity.clone(), presence, intensity)
    wrong = au_loss(torch.where(presence > 0.5, -8.0, 8.0), 1.0 - intensity, presence, intensity)
    assert float(right) < 0.05 < 10.0 < float(wrong)


def test_au_text_concepts_name_single_aus_then_unions():
    concepts = D.au_text_concepts(80, seed=0)
    assert len(concepts) == 80 and concepts == D.au_text_concepts(80, seed=0)
    singles = [c for c in concepts if len(c.aus) == 1]
    assert [c.aus[0].au for c in singles] == list(AUS)
    for c in concepts:
        segments = parse_instruction(c.label).segments
        assert len(segments) == 1 and segments[0].text == c.label
        channels = [{name for name, _ in AU_TO_CHANNELS[a.au]} for a in c.aus]
        assert all(not (x & y) for i, x in enumerate(channels) for y in channels[i + 1:])
        expected = np.clip(sum(concept_weights(_one_au(a.au, a.intensity)) for a in c.aus), 0, 1)
        assert np.allclose(concept_weights(c), expected, atol=1e-6)  # no shared channel: the union is the sum
    assert any(len(c.aus) == 3 for c in concepts) and " plus " in concepts[-1].label


def test_description_items_name_the_core_aus_and_keep_heldout_out():
    items = D.description_items()
    forbidden = {p for n in D.HELDOUT_CONCEPTS for p in (get_concept(n).label, *get_concept(n).phrases)}
    forbidden |= set(D.heldout_phrases().values())
    assert items
    for item in items:
        assert not set(item.phrases) & forbidden and item.segments[0].concept not in D.HELDOUT_CONCEPTS
    happy = [i for i in items if i.phrases == ("look happy",)]
    assert happy and happy[0].instruction == "look happy showing cheek raiser plus lip corner puller plus lips part"
