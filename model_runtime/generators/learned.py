"""The learned I2FET generator the runtime uses: IFED + CVAE key generator + learned transitions, from safetensors.

`load_learned()` reads `weights/i2fet-arkit-minilm.safetensors` (config and encoder facts in its metadata), checks
its sha256 against the JSON beside it (written by training, repeated in the model card), and refuses a file that is
truncated, corrupt, of the wrong shapes or made for another text encoder with one clear WeightsError sentence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..actions import content_text
from ..device import select_device
from ..encoders import load_text_encoder
from ..encoders.base import load_safetensors, verify_sha256
from ..errors import WeightsError
from ..expression_space import NUM_CHANNELS
from ..glosses import gloss_rows
from ..hugepages import into_huge_pages
from ..knowledge import all_concepts, concept_weights, get_concept
from ..models.au_memory import AUMemory
from ..models.config import I2FETConfig, config_from_dict
from ..models.features import manner_vector
from ..models.generator import SIDE_INDEX, KeyGenerator
from ..models.transition import TransitionModel, fill_span
from ..paths import WEIGHTS_DIR, atomic_output, sha256_file
from ..timeline import FrameSpan, TimedSegment
from .base import ConceptIndex, KeyExpression, key_expression, softmax_confidence

DEFAULT_WEIGHTS_NAME = "i2fet-arkit-minilm"
DEFAULT_WEIGHTS = WEIGHTS_DIR / f"{DEFAULT_WEIGHTS_NAME}.safetensors"
FORMAT = "i2fet.weights/1"
MAX_SEGMENT_TOKENS = 64


class I2FETModel(nn.Module):
    """Everything that is trained: the key generator (with IFED inside), the transition model and, when configured,
    the AU memory for novel texts (made last, so the others are initialised the same with or without it)."""

    def __init__(self, cfg: I2FETConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = KeyGenerator(cfg.ifed, cfg.generator)
        self.transition = TransitionModel(cfg.transition)
        self.memory = AUMemory(cfg.memory) if cfg.memory.enabled else None


def segment_seed(seed: int, position: int) -> int:
    """The torch seed for the latent noise of the segment at `position` in an instruction."""
    return (int(seed) * 1_000_003 + position * 7919 + 17) % (2**63 - 1)


def save_weights(model: I2FETModel, path: Path, encoder, extra: dict | None = None) -> str:
    """Write the weights (float32 safetensors, but for int8 tables; config in the metadata) and a JSON sidecar with
    their sha256."""
    state = {k: (v.detach() if v.dtype == torch.int8 else v.detach().float()).cpu().contiguous()
             for k, v in model.state_dict().items()}  # int8: the AU memory's gloss table, stored as quantized
    meta = {"format": FORMAT, "config": model.cfg.to_json(), "name": model.cfg.name, "encoder": encoder.name,
            "encoder_model": encoder.model_name, "encoder_dim": str(encoder.token_dim),
            "encoder_sha256": encoder.checksum}
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    path.chmod(0o644)
    digest = sha256_file(path)
    with atomic_output(path.with_suffix(".json"), "w") as handle:
        json.dump({"name": model.cfg.name, "file": path.name, "sha256": digest, "bytes": path.stat().st_size,
                   "encoder_model": encoder.model_name, "format": FORMAT}, handle, indent=2)
        handle.write("\n")
    path.with_suffix(".json").chmod(0o644)
    return digest


def _read_metadata(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        detail = str(exc).strip().rstrip(".") or type(exc).__name__
        raise WeightsError(f"The I2FET weights file {path} cannot be read as safetensors ({detail}).") from None


def expected_sha256(path: Path) -> str:
    """The sha256 recorded beside the weights (the JSON sidecar training writes). Without it nothing could tell a
    tampered or damaged file from a good one, so a missing sidecar is refused, not skipped."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise WeightsError(f"The I2FET weights file {path} has no checksum file {sidecar.name} beside it; copy both "
                           f"files together (training writes them as a pair).")
    try:
        digest = json.loads(sidecar.read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise WeightsError(f"The checksum file {sidecar} beside the I2FET weights is unreadable; reinstall both.") from None
    if not isinstance(digest, str) or len(digest) != 64:
        raise WeightsError(f"The checksum file {sidecar} beside the I2FET weights holds no valid sha256.")
    return digest


def load_learned(weights_path: str | Path | None = None, encoder=None, device="auto") -> "LearnedGenerator":
    """Load the learned generator; `encoder` is a loaded text encoder (the one named in the weights is loaded when
    None); `device` is "auto" | "cpu" | "cuda" or a torch.device."""
    path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise WeightsError(f"The I2FET weights file {path} does not exist; train it with 'i2fet train' or reinstall.")
    torch_device = device if isinstance(device, torch.device) else select_device(device)
    digest = verify_sha256(path, expected_sha256(path), "I2FET")
    meta = _read_metadata(path)
    if meta.get("format") != FORMAT:
        raise WeightsError(f"The file {path} is not an I2FET weights file of format {FORMAT}.")
    try:
        cfg = config_from_dict(json.loads(meta["config"]))
    except Exception:  # noqa: BLE001 - any malformed config is one kind of error for the user
        raise WeightsError(f"The I2FET weights file {path} carries an unreadable model config.") from None
    if cfg.data.space != "arkit":
        raise WeightsError(f"The I2FET weights file {path} was trained in {cfg.data.space} space; the runtime needs "
                           f"ARKit-space weights.")
    if encoder is None:
        encoder = load_text_encoder(meta.get("encoder", "minilm"), device=str(torch_device))
    if meta.get("encoder_sha256") not in (None, encoder.checksum):
        trained = meta.get("encoder", "minilm")
        raise WeightsError(f"The I2FET weights {path.name} were trained with other {meta.get('encoder_model')} "
                           f"weights (sha256 {meta['encoder_sha256'][:12]}...) than the text encoder loaded "
                           f"({encoder.name}, {encoder.checksum[:12]}...); use the encoder they were trained with "
                           f"(--encoder {trained}).")
    if encoder.token_dim != cfg.ifed.text_dim or str(encoder.token_dim) != meta.get("encoder_dim"):
        raise WeightsError(f"The I2FET weights {path.name} expect a {meta.get('encoder_model')} text encoder with "
                           f"{cfg.ifed.text_dim}-d tokens, but {encoder.model_name} gives {encoder.token_dim}-d.")
    state = load_safetensors(path, torch.device("cpu"), "I2FET")
    model = I2FETModel(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(s.strip() for s in first[1:3]) if len(first) > 1 else first[0] if first else ""
        raise WeightsError(f"The I2FET weights file {path} does not fit the model it describes ({detail[:160]}).") \
            from None
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise WeightsError(f"The I2FET weights file {path} holds non-finite values in {name}.")
    problem = model.memory.problem() if model.memory is not None else None
    if problem:
        raise WeightsError(f"The I2FET weights file {path} carries an AU memory that cannot be used: {problem}.")
    model.to(torch_device).eval()
    if torch_device.type == "cpu":  # read after each encode has pushed them out of the caches (model_runtime.hugepages)
        into_huge_pages(list(model.parameters()) + list(model.buffers()))
    return LearnedGenerator(model, encoder, torch_device, weights_name=meta.get("name", path.stem), sha256=digest)


class LearnedGenerator:
    name = "i2fet"
    description = "learned I2FET (IFED text-expression latent, CVAE key generator, learned per-channel transitions)"

    def __init__(self, model: I2FETModel, encoder, device, weights_name: str, sha256: str,
                 temperature: float = 1.0):
        self.model = model
        self.encoder = encoder
        self.device = torch.device(device)
        self.weights_name = weights_name
        self.weights_sha256 = sha256
        self.temperature = temperature
        self.concepts = tuple(all_concepts())
        self.neutral = get_concept("neutral")
        with torch.inference_mode():
            protos = torch.as_tensor(np.stack([concept_weights(c) for c in self.concepts]), device=self.device)
            _, self.concept_latents = model.generator.ifed.encode_expression(protos[:, None, :])
            self.scale = float(model.generator.ifed.logit_scale.clamp(0.0, 4.6052).exp())
        # Labels come from the nearest knowledge-base phrase in the IFED shared latent, like zero-shot
        # classification with class prompts; the phrase latents are cached per weights and encoder.
        self.index = ConceptIndex(encoder, self.concepts, embed=self._text_latents,
                                  identity=[sha256, encoder.checksum], cache=bool(sha256), chunk=128)
        self.phrase_index = ConceptIndex(encoder, self.concepts)  # the same phrases in the encoder's own space

    def _text_latents(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            tokens, mask = self.embed(texts)
            return self.model.generator.ifed.encode_text(tokens, mask)[2].float().cpu().numpy()

    def describe_expressions(self, weights: np.ndarray) -> list[tuple[str, float]]:
        """(N, 52) expressions -> (concept name, cosine) of the nearest concept prototype in the expression latent."""
        with torch.inference_mode():
            w = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=self.device)
            _, z_e = self.model.generator.ifed.encode_expression(w[:, None, :])
            sims = (z_e @ self.concept_latents.T).float().cpu().numpy()
        return [(self.concepts[int(i)].name, float(s[i])) for s, i in zip(sims, sims.argmax(1))]

    # ---- keys -------------------------------------------------------------------------------------------------
    def embed(self, texts: list[str]):
        tokens, mask, _ = self._encode(texts)
        return tokens, mask

    def _encode(self, texts: list[str], also: Sequence[str] = ()):
        """Token features and mask of `texts`, and the sentence embeddings of `texts` then of `also` (what the memory
        reads: content words, perhaps in its frame of a few words), in one encoder pass, since a second pass costs
        more than a few more rows."""
        emb = self.encoder.encode([*texts, *also])
        tokens, mask = emb.tokens[:len(texts), :MAX_SEGMENT_TOKENS], emb.mask[:len(texts), :MAX_SEGMENT_TOKENS]
        return tokens.to(self.device, torch.float32), mask.to(self.device), emb.pooled.float().cpu().numpy()

    def _encode_with_memory(self, texts: list[str]):
        """`_encode`'s tokens, mask and sentence embeddings of `texts`, and the sentence embeddings the AU memory
        reads: the texts' own, or (content_words) those of their content words, in the memory's frame (unless a frame
        map stands for it: AUMemory.in_frame), where that differs from the text."""
        memory = self.model.memory
        content = texts
        if memory is not None:
            words = [content_text(t) for t in texts] if memory.cfg.content_words else texts
            content = words if memory.cfg.frame_map else [memory.cfg.frame.format(w) for w in words]
        changed = [i for i, (c, t) in enumerate(zip(content, texts)) if c != t]
        tokens, mask, pooled = self._encode(texts, [content[i] for i in changed])
        sentences = pooled[:len(texts)]
        read = sentences.copy()
        read[changed] = pooled[len(texts):]
        return tokens, mask, sentences, read

    def key_expressions(self, plans: Sequence[Sequence[TimedSegment]], seed: int = 0) -> list[list[KeyExpression]]:
        """Key expressions for several instructions: one text pass for all segments, one decoder pass per segment
        position (segment i starts from segment i-1's key)."""
        rows = [(pi, si) for pi, plan in enumerate(plans) for si, seg in enumerate(plan) if seg.kind != "return"]
        results: list[list[KeyExpression | None]] = [[None] * len(plan) for plan in plans]
        if rows:
            gen = self.model.generator
            with torch.inference_mode():
                texts = [plans[pi][si].text for pi, si in rows]
                tokens, mask, sentences, read = self._encode_with_memory(texts)
                sentences_t = torch.as_tensor(read, device=self.device)
                text, pooled, z_t = gen.ifed.encode_text(tokens, mask)
                scores = self.index.concept_scores(z_t.float().cpu().numpy())
                similarity = self.phrase_index.nearest_similarity(sentences)
                sides = torch.as_tensor([SIDE_INDEX.get(plans[pi][si].side, 0) for pi, si in rows], device=self.device)
                memory = self.model.memory
                reading = None
                if memory is not None:
                    glosses = memory.gloss_vectors([gloss_rows(t) for t in texts]) if memory.cfg.glosses else None
                    reading = memory.read(sentences_t, sides, glosses)
                row_of = {key: r for r, key in enumerate(rows)}
                previous = torch.zeros(len(plans), NUM_CHANNELS, device=self.device)
                for position in range(max(len(plan) for plan in plans)):
                    active = [(pi, row_of.get((pi, position))) for pi, plan in enumerate(plans) if position < len(plan)]
                    live = [(pi, r) for pi, r in active if r is not None]
                    if len(live) < len(active):  # a return: the next segment starts from rest
                        previous[[pi for pi, r in active if r is None]] = 0.0
                    if not live:
                        continue
                    pis = [pi for pi, _ in live]
                    idx = [r for _, r in live]
                    g = torch.Generator(device="cpu").manual_seed(segment_seed(seed, position))
                    eps = torch.randn(1, gen.cfg.z_dim, generator=g).to(self.device).expand(len(live), -1)
                    out = gen.sample(text[idx], pooled[idx], mask[idx], previous[pis], sides[idx], eps,
                                     self.temperature, memory, reading.rows(idx) if reading is not None else None)
                    out_np = out.float().cpu().numpy()
                    for j, (pi, r) in enumerate(live):
                        seg = plans[pi][position]
                        results[pi][position] = self._key(out_np[j], scores[r], seg, similarity[r])
                    previous[pis] = out
        for pi, plan in enumerate(plans):
            for si, seg in enumerate(plan):
                if results[pi][si] is None:
                    results[pi][si] = key_expression(np.zeros(NUM_CHANNELS, np.float32), self.neutral, seg, 1.0, 1.0)
        return results  # type: ignore[return-value]

    def _key(self, weights: np.ndarray, scores: np.ndarray, seg: TimedSegment, similarity: float) -> KeyExpression:
        best = int(np.argmax(scores))
        return key_expression(weights, self.concepts[best], seg, softmax_confidence(scores, best, self.scale),
                              similarity)

    def nearest_concepts(self, texts: list[str]) -> list[tuple[str, float]]:
        """(concept name, cosine) of each text's nearest knowledge-base concept in the IFED shared latent."""
        with torch.inference_mode():
            tokens, mask = self.embed(texts)
            _, _, z_t = self.model.generator.ifed.encode_text(tokens, mask)
            sims = self.index.concept_scores(z_t.float().cpu().numpy())
        return [(self.concepts[int(i)].name, float(s[i])) for s, i in zip(sims, sims.argmax(1))]

    # ---- frames -----------------------------------------------------------------------------------------------
    def transition_frames(self, spans: Sequence[FrameSpan], targets: np.ndarray, start: np.ndarray,
                          plan: Sequence[TimedSegment] | None = None) -> np.ndarray:
        """(T, 52) frames: from `start`, a learned non-lock-step eased transition into each target, then a hold."""
        targets = np.asarray(targets, dtype=np.float32)
        start = np.asarray(start, dtype=np.float32)
        previous = np.concatenate([start[None], targets[:-1]], 0)
        manners = np.stack([manner_vector(getattr(s, "speed", None), tuple(getattr(s, "manner", ())))
                            for s in plan] if plan is not None else
                           [manner_vector(None) for _ in spans])
        with torch.inference_mode():
            k = self.model.transition.warps(torch.as_tensor(previous, device=self.device),
                                            torch.as_tensor(targets, device=self.device),
                                            torch.as_tensor(manners, device=self.device)).float().cpu().numpy()
        return warped_frames(spans, targets, start, k)


def warped_frames(spans: Sequence[FrameSpan], targets: np.ndarray, start: np.ndarray, warps: np.ndarray) -> np.ndarray:
    num_frames = spans[-1].end_frame + 1
    frames = np.empty((num_frames, targets.shape[1]), dtype=np.float32)
    frames[:] = start
    prev = np.asarray(start, dtype=np.float32)
    for span, target, k in zip(spans, targets, warps):
        length = span.apex_frame - span.start_frame
        if length > 0:
            frames[span.start_frame + 1: span.apex_frame + 1] = fill_span(prev, target, length, k)
        frames[span.apex_frame: span.end_frame + 1] = target
        prev = target
    return np.clip(frames, 0.0, 1.0)
