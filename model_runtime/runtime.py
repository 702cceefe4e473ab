"""The public entry point: `Runtime.load()` once, then `generate()` as often as needed."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Sequence

import numpy as np

from .animation import Animation
from .device import select_device, single_intra_op_thread
from .errors import InputError
from .expression_space import NUM_CHANNELS
from .generators.base import Generator
from .generators.registry import DEFAULT_MODEL, MODEL_NAMES, check_choice, load_generator
from .clauses import names_a_facial_word
from .idle import add_life
from .instructions import parse_instruction, validate_instruction
from .layers import head_rotation, layered_keys
from .limits import check_fps, check_intensity_scale, check_seed
from .recognition import Recognition
from .timeline import check_duration, crowded_repeats, frame_spans, plan_segments

class Runtime:
    """A text encoder and a generator on one device; thread-compatible for reads, load once per process."""

    def __init__(self, encoder, generator: Generator, device):
        self.encoder = encoder
        self.generator = generator
        self.device = device

    @classmethod
    def load(cls, model: str = DEFAULT_MODEL, device: str = "auto", encoder: str = "minilm",
             encoder_path: str | None = None, weights: str | None = None) -> "Runtime":
        """`model` "i2fet" uses the shipped weights (or `weights`, a .safetensors path); "baseline" needs none."""
        from .encoders import load_text_encoder  # torch: `import model_runtime.runtime` stays light

        check_choice(model, weights)
        torch_device = select_device(device)
        text_encoder = load_text_encoder(encoder, path=encoder_path, device=str(torch_device))
        generator = load_generator(model, text_encoder, torch_device, weights)
        return cls(text_encoder, generator, torch_device)

    @cached_property
    def recognition(self) -> Recognition:
        """Tells text that names nothing facial from real instructions (model_runtime.recognition)."""
        return Recognition(self.encoder, self.generator.phrase_index)

    def generate(self, instruction: str, fps: int = 30, seed: int = 0, duration: float | None = None,
                 intensity: float = 1.0, start: np.ndarray | None = None,
                 start_image: str | os.PathLike | None = None,
                 neutral_image: str | os.PathLike | None = None,
                 start_animation: str | os.PathLike | None = None, life: bool = False) -> Animation:
        """One instruction -> Animation; it starts from `start`, an optional (52,) expression, or from the face in
        the photo `start_image` (less what the same person's `neutral_image` shows; see model_runtime.photo), or from
        the last frame of the saved animation `start_animation` (a tracked video, an earlier generation), or else
        from neutral."""
        return self.generate_batch([instruction], fps=fps, seed=seed, duration=duration, intensity=intensity,
                                   start=start, start_image=start_image, neutral_image=neutral_image,
                                   start_animation=start_animation, life=life)[0]

    def generate_batch(self, instructions: Sequence[str], fps: int = 30, seed: int = 0,
                       duration: float | None = None, intensity: float = 1.0,
                       start: np.ndarray | None = None,
                       start_image: str | os.PathLike | None = None,
                       neutral_image: str | os.PathLike | None = None,
                       start_animation: str | os.PathLike | None = None, life: bool = False) -> list[Animation]:
        """Many instructions sharing one encoder pass (and one read of `start_image`): the path batch baking uses."""
        if isinstance(instructions, str):  # a str is a sequence too: each letter would become an instruction
            raise InputError("generate_batch takes a list of instructions; give [instruction] or call generate.")
        if not isinstance(life, (bool, np.bool_)):
            raise InputError(f"life must be True or False, not {life!r}.")
        fps = check_fps(fps)
        check_seed(seed)
        if duration is not None:
            check_duration(duration)
        check_intensity_scale(intensity)
        if sum(x is not None for x in (start, start_image, start_animation)) > 1:
            raise InputError("Give one start: a start expression, a start image or a start animation, not two of them.")
        if neutral_image is not None and start_image is None:
            raise InputError("A neutral image is only used with a start image; give both or neither.")
        start_weights = check_start(start if start_animation is None else read_start_animation(start_animation))
        texts = [validate_instruction(text) for text in instructions]
        photo_warnings: list[str] = []
        if start_image is not None:
            from .photo import read_start_expression  # OpenCV and the face detector: only for a photo

            photo = read_start_expression(start_image, neutral_image=neutral_image)
            start_weights, photo_warnings = photo.weights, list(photo.warnings)
        parsed = [parse_instruction(text) for text in texts]
        timing_notes: list[list[str]] = [[] for _ in parsed]
        plans = [plan_segments(p.segments, fps, duration, notes) for p, notes in zip(parsed, timing_notes)]
        for plan, notes in zip(plans, timing_notes):
            notes.extend(crowded_repeats(plan, fps))
        with single_intra_op_thread():
            return self._generate(texts, parsed, plans, fps, seed, intensity, start_weights, photo_warnings, life,
                                  timing_notes)

    def _generate(self, texts, parsed, plans, fps, seed, intensity, start_weights, photo_warnings,
                  life, timing_notes) -> list[Animation]:
        # the generator's keys, per layer, combined; a part that names nothing facial beside one that does is left out
        # (nothing facial: not recognised against the generator's knowledge base, and no word of the whole one, so a
        # held-out concept's word in an evaluation is not taken for gibberish)
        def facial(text: str, similarity: float) -> bool:
            return names_a_facial_word(text) or self.recognition.recognised(text, similarity)

        keys = layered_keys(self.generator, plans, seed=seed, recognised=facial)
        animations = []
        for text, parse, plan, plan_keys, notes in zip(texts, parsed, plans, keys, timing_notes):
            spans = frame_spans(plan, fps)
            targets = np.stack([k.weights for k in plan_keys]) * intensity
            first = targets[0] if plan[0].is_start else start_weights
            frames = self.generator.transition_frames(spans, np.clip(targets, 0, 1), first, plan=plan)
            if life:  # spontaneous blinks and gaze shifts where the instruction leaves the eyes free
                frames = add_life(frames, fps, seed, held=_held_frames(plan_keys, spans, len(frames)))
            segments = [{"text": seg.text, "start_frame": span.start_frame, "end_frame": span.end_frame,
                         "label": key.label, "intensity": round(key.intensity, 4),
                         "confidence": round(key.confidence, 4), "concept": key.concept, "kind": seg.kind,
                         "apex_frame": span.apex_frame}
                        for seg, span, key in zip(plan, spans, plan_keys)]
            unread = self.recognition.warnings(r for key in plan_keys for r in key.readings) + self._unshown(plan_keys)
            animations.append(Animation(frames=frames, fps=fps, segments=segments, instruction=text,
                                        model=self.model_info(), warnings=photo_warnings + _warnings(parse) + notes + unread,
                                        head_rotation=head_rotation(plan, spans)))
        return animations

    def _unshown(self, keys) -> list[str]:
        """A warning for each recognised text part that showed nothing (an unrecognised one has its own warning)."""
        return list(dict.fromkeys(
            f"Nothing was shown for {text!r}: the model found no facial action in it (it is closest to {label!r}); "
            f"try plainer words." for key in keys for text, label, similarity in key.unshown
            if self.recognition.recognised(text, similarity)))

    def model_info(self) -> dict:
        return {"name": self.generator.name, "weights": getattr(self.generator, "weights_name", self.generator.name),
                "sha256": getattr(self.generator, "weights_sha256", None), "text_encoder": self.encoder.model_name,
                "text_encoder_sha256": self.encoder.checksum}


def _warnings(parsed) -> list[str]:
    return [f"This part of the instruction was not used as written: {fragment!r}." for fragment in parsed.unplaced] \
        + list(parsed.notes)


def read_start_animation(path: str | os.PathLike) -> np.ndarray:
    """The last frame of a saved ARKit animation (.json or .npz) as (52,) weights in canonical order, so that an
    instruction continues where a tracked video or an earlier generation ended; InputError (one sentence) otherwise."""
    anim = Animation.load(path)
    if anim.rig != "arkit52":
        raise InputError(f"The animation {path} holds {anim.rig} channels, not ARKit weights; start from an ARKit "
                         f"animation (.json or .npz written by i2fet).")
    return anim.frames[-1].copy()  # Animation.load has checked it and put the channels in canonical order


def check_start(start) -> np.ndarray:
    if start is None:
        return np.zeros(NUM_CHANNELS, dtype=np.float32)
    try:
        weights = np.asarray(start, dtype=np.float32)
    except (TypeError, ValueError):  # text or objects where numbers belong
        weights = np.full(0, np.nan, dtype=np.float32)
    if weights.shape != (NUM_CHANNELS,) or not np.isfinite(weights).all():
        raise InputError(f"The start expression must be {NUM_CHANNELS} finite ARKit weights.")
    return np.clip(weights, 0.0, 1.0)


def _held_frames(keys, spans, num_frames: int) -> np.ndarray:
    """(T, 52) bool: each segment's held channels ("without blinking") over its frames."""
    held = np.zeros((num_frames, NUM_CHANNELS), dtype=bool)
    for key, span in zip(keys, spans):
        if key.held is not None:
            held[span.start_frame:span.end_frame + 1] |= key.held
    return held
