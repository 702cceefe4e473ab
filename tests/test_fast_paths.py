"""The run time's speed-ups change no bit: every animation equals the one the plain module calls give.

The reference is the code path before the speed-ups, rebuilt in-process: each module called as a module
(`Module.__call__`, so torch's own transformer modules choose their kernels as they always did), the functions
changed beyond that as they were (below), and the weights left in ordinary memory. Comparing in-process rather than
against stored files keeps the check valid on any CPU.
"""

import gc
import mmap

import numpy as np
import pytest
import torch
from torch import nn

from model_runtime import Runtime
from model_runtime import hugepages, layers
from model_runtime.encoders import minilm
from model_runtime.generators import learned
from model_runtime.models import functional, generator, ifed, transition

INSTRUCTIONS = [
    "smile",
    "slowly smile, then look shocked, then relax",
    "slightly frown, then smile for 2 seconds, then look surprised, then wink with the left eye, then look disgusted, "
    "then back to neutral",
    "a sad smile while looking left",
    "blink twice, then open the mouth wide",
    "nod and smirk, then glare",
    "smile and frown at the same time, then close the eyes while looking surprised",
    "grin with wide eyes while blinking",
]


def _module_call(module, x):
    return module(x)


def _attend_with_copied_mask(self, queries, text, mask):
    """IFED.attend as it was: the memory mask copied out to (B * heads, Q, L) in eval mode too."""
    b, q, heads, length = queries.shape[0], queries.shape[1], self.cfg.heads, mask.shape[1]
    blocked = torch.zeros(mask.shape, dtype=queries.dtype, device=queries.device).masked_fill(~mask, float("-inf"))
    memory_mask = blocked[:, None, None, :].expand(b, heads, q, length).reshape(b * heads, q, length)
    if self.training:
        return self.cross(queries, text, memory_mask=memory_mask)
    return self._attend_eval(queries, text, memory_mask.view(b, heads, q, length))


def _bert_as_it_was(self, ids, mask):
    """_MiniBert.forward as it was: the padded batch through every layer, padding rows included."""
    import torch.nn.functional as F

    b, n = ids.shape
    x = self.ln_embed(F.embedding(ids, self.word) + self.position[:n] + self.token_type[0])
    attn_mask = None if bool(mask.all()) else mask[:, None, None, :]
    for layer in self.layers:
        qkv = layer.qkv(x).view(b, n, 3, layer.heads, -1).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
        x = layer.ln_attn(x + layer.out(ctx.transpose(1, 2).reshape(b, n, -1)))
        x = layer.ln_ffn(x + layer.ffn_out(F.gelu(layer.ffn_in(x))))
    return x


def _combine_as_it_was(parts):
    """layers.combine as it was: every antagonist pair checked for every part, the first one included."""
    out = np.zeros(layers.NUM_CHANNELS, dtype=np.float32)
    acted = np.zeros(layers.NUM_CHANNELS, dtype=bool)  # channels an action part drives
    for part, weights in parts:
        w = np.asarray(weights, dtype=np.float32).copy()
        if part.role == "yield":
            w[layers._CORNERS] = 0.0
        if part.role == "modifier" and part.action is None:
            used = {layers.REGION_OF[i] for i in np.flatnonzero(out > 2 * layers._ACTIVE)}
            w[np.isin(layers.REGION_OF, list(used))] = 0.0
        for a, b in layers.ANTAGONISTS:
            for mine, theirs in ((a, b), (b, a)):
                if out[theirs].max(initial=0) <= layers._ACTIVE:
                    continue
                if part.action is not None and not acted[theirs].any() and w[mine].max(initial=0) > layers._ACTIVE:
                    out[theirs] = 0.0  # an explicit action beats what a text part shows there by the way
                else:
                    w[mine] = 0.0
        out = np.maximum(out, w)
        if part.action is not None:
            acted |= w > 0
    explicit = set()
    for part, weights in parts:
        if part.action is not None:
            explicit.update(np.flatnonzero(np.asarray(weights) > 0).tolist())
    for part, _ in parts:
        if part.action is not None:
            for name in part.action.zero:
                if layers.CHANNEL_INDEX[name] not in explicit:
                    out[layers.CHANNEL_INDEX[name]] = 0.0
    return np.clip(out, 0.0, 1.0)


def _compose_with_einsum(self, decoded, pooled_text, side):
    """KeyGenerator.compose as it was: the AU weights summed by einsum."""
    if self.au is None or self.cfg.au_compose == "off":
        return decoded
    logits, intensity = self.au_predict(pooled_text)
    prob = torch.sigmoid(logits)
    matrix = self.au_matrix[side]
    present = (prob > generator.AU_PRESENT).to(decoded.dtype) * intensity
    composed = torch.einsum("ba,bac->bc", present, matrix).clamp(0.0, 1.0)
    if self.cfg.au_compose == "gate":
        support = (prob[:, :, None] * (matrix > 0)).amax(1)
        decoded = decoded * (support / generator.AU_PRESENT).clamp(max=1.0)
    return torch.maximum(decoded, composed)


@pytest.fixture(scope="module")
def runtimes():
    """(reference, fast): the reference loaded and later run with the plain module calls and no huge pages."""
    patch = pytest.MonkeyPatch()
    patch.setattr(minilm, "into_huge_pages", lambda params: False)
    patch.setattr(learned, "into_huge_pages", lambda params: False)
    reference = Runtime.load(device="cpu")
    patch.undo()
    return reference, Runtime.load(device="cpu")


def _plain(patch):
    for module in (minilm, generator, ifed, transition):
        patch.setattr(module, "forward", _module_call)
    patch.setattr(minilm._MiniBert, "forward", _bert_as_it_was)
    patch.setattr(ifed.IFED, "_fused_inference", lambda self: False)
    patch.setattr(ifed.IFED, "attend", _attend_with_copied_mask)
    patch.setattr(generator.KeyGenerator, "compose", _compose_with_einsum)
    patch.setattr(layers, "combine", _combine_as_it_was)


def _generate_plain(runtime, call):
    with pytest.MonkeyPatch.context() as patch:
        _plain(patch)
        return call(runtime)


def _same(a, b):
    assert a.frames.dtype == b.frames.dtype and np.array_equal(a.frames, b.frames)
    assert a.segments == b.segments and a.warnings == b.warnings and a.model == b.model
    assert (a.head_rotation is None) == (b.head_rotation is None)
    if a.head_rotation is not None:
        assert np.array_equal(a.head_rotation, b.head_rotation)


def test_fast_runtime_holds_its_weights_in_huge_pages_and_the_reference_does_not(runtimes):
    reference, fast = runtimes
    if not hasattr(mmap, "MADV_HUGEPAGE"):  # Windows, macOS: the weights stay where they are
        assert not hugepages.into_huge_pages(list(fast.generator.model.parameters()))
        return
    for model, plain in ((fast.encoder._model.layers, reference.encoder._model.layers),
                         (fast.generator.model, reference.generator.model)):
        ours = list(model.parameters()) + list(model.buffers())
        theirs = list(plain.parameters()) + list(plain.buffers())
        first = ours[0].data_ptr()
        assert first % hugepages.HUGE_PAGE == 0
        size = sum(t.numel() * t.element_size() + 4096 for t in ours)
        assert all(0 <= t.data_ptr() - first < size for t in ours)  # one mapping
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    assert sum(t.numel() * 4 for t in fast.encoder._model.layers.parameters()) > 40e6


@pytest.mark.parametrize("seed", [0, 7, 123456])
def test_every_instruction_gives_the_same_bits_as_the_plain_path(runtimes, seed):
    reference, fast = runtimes
    for text in INSTRUCTIONS:
        _same(fast.generate(text, seed=seed), _generate_plain(reference, lambda rt: rt.generate(text, seed=seed)))


def test_a_batch_gives_the_same_bits_as_the_plain_path(runtimes):
    reference, fast = runtimes
    batch = INSTRUCTIONS[1:5]
    ours = fast.generate_batch(batch, seed=3, intensity=0.8)
    theirs = _generate_plain(reference, lambda rt: rt.generate_batch(batch, seed=3, intensity=0.8))
    assert len(ours) == len(theirs) == len(batch)
    for a, b in zip(ours, theirs):
        _same(a, b)


def test_encoder_outputs_match_the_padded_path(runtimes):
    """The tokens and pooled vectors themselves, padding included, for batch shapes the runtime and training use.
    A batch without padding runs as it did, to the bit. A padded batch runs packed, its matrix products over fewer
    rows, and float32 sums over another row count may round differently in the last place (as a text's embedding
    alone and in a batch always could: test_encoders' batch-equals-single): within 1e-5, and the animations above
    are still bit-identical."""
    reference, fast = runtimes
    texts = ["smile", "look shocked", "wink with the left eye", "a", "grin from ear to ear while raising the brows"]
    for batch in (texts[:1], texts[1:2] * 3, texts[:2], texts, texts * 7):
        ours = fast.encoder.encode(batch)
        theirs = _generate_plain(reference, lambda rt: rt.encoder.encode(batch))
        assert torch.equal(ours.mask, theirs.mask)
        if bool(ours.mask.all()):
            assert torch.equal(ours.tokens, theirs.tokens) and torch.equal(ours.pooled, theirs.pooled)
        else:
            assert (ours.tokens[~ours.mask] == 0).all()
            assert float((ours.tokens - theirs.tokens).abs().max()) < 1e-5
            assert float((ours.pooled - theirs.pooled).abs().max()) < 1e-5


def test_functional_forward_is_the_modules_own_forward():
    torch.manual_seed(0)
    modules = [nn.Linear(16, 8), nn.GELU(approximate="tanh"), nn.ReLU(),
               nn.Sequential(nn.LayerNorm(16, eps=1e-3), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 4))]
    x = torch.randn(5, 3, 16)
    for layer in modules:
        assert torch.equal(functional.forward(layer, x), layer(x))
    emb = nn.Embedding(3, 16, padding_idx=0)
    ids = torch.tensor([[0, 2, 1]])
    assert torch.equal(functional.forward(emb, ids), emb(ids))


def test_fused_inference_only_where_torch_takes_it():
    model = ifed.IFED(ifed.IFEDConfig()).eval()
    with torch.inference_mode():
        assert model._fused_inference()
    assert not model._fused_inference()  # autograd on: torch's modules take their Python path
    with torch.inference_mode():
        assert not model.train()._fused_inference()
        assert not ifed.IFED(ifed.IFEDConfig(heads=1, d=16)).eval()._fused_inference()  # odd head count


def test_huge_pages_keep_values_and_fall_back_cleanly(monkeypatch):
    params = [nn.Parameter(torch.randn(300, 70), requires_grad=False), nn.Parameter(torch.randn(5))]
    before = [p.detach().clone() for p in params]
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert hugepages.into_huge_pages(params)
        gc.collect()  # the mapping lives as long as the tensors that view it
        assert params[0].data_ptr() % hugepages.HUGE_PAGE == 0
        assert params[1].data_ptr() % 4096 == 0
        assert all(torch.equal(p, b) for p, b in zip(params, before))
        assert isinstance(params[0], nn.Parameter) and not params[0].requires_grad
    monkeypatch.delattr(mmap, "MADV_HUGEPAGE", raising=False)
    other = [torch.randn(4, 4)]
    where = other[0].data_ptr()
    assert not hugepages.into_huge_pages(other) and other[0].data_ptr() == where


def test_token_ids_are_what_encode_batch_gives(runtimes):
    """One text at a time, padded by hand, equals the tokenizer's own batch padding (and truncation)."""
    encoder = runtimes[1].encoder
    texts = ["smile", "look shocked", "", "wink with the left eye", "naïve café smile!", "word " * 400, "a"]
    for batch in (texts[:1], texts[:2], texts, texts[::-1], [texts[2]]):
        ids, mask = encoder.token_ids(batch)
        reference = encoder.tokenizer.encode_batch(batch, add_special_tokens=True)
        assert ids.dtype == torch.long and mask.dtype == torch.bool
        assert ids.tolist() == [e.ids for e in reference]
        assert mask.tolist() == [[bool(v) for v in e.attention_mask] for e in reference]
    assert encoder.token_ids(texts)[0].shape[1] == encoder.max_seq_length  # the long text was truncated


def test_concept_scores_are_each_concepts_best_phrase():
    """The per-concept maximum, checked against a plain loop over the phrases each concept owns."""
    from model_runtime.generators.base import ConceptIndex

    rng = np.random.default_rng(0)
    index = ConceptIndex(None, embed=lambda texts: rng.standard_normal((len(texts), 8)).astype(np.float32),
                         identity=["test"], cache=False)
    for rows in (0, 1, 5):
        vectors = rng.standard_normal((rows, 8)).astype(np.float32)
        scores = index.concept_scores(vectors)
        assert scores.shape == (rows, len(index.concepts)) and scores.dtype == np.float32
        sims = vectors @ index.embeddings.T
        for c in range(len(index.concepts)):
            assert np.array_equal(scores[:, c], sims[:, index.owners == c].max(1, initial=-np.inf))
