"""Combining the simultaneous parts of a key the way faces combine, and the head track.

Every part of a key is either a direct action (weights from model_runtime.actions, no encoder) or text for the
generator (baseline or learned: its own key for that text alone). Parts are then united, not added: each channel
takes the largest weight any part gives it, because co-occurring action units are separate muscles (FACS) and one
muscle asked for twice does not contract twice as hard. Clashes are resolved on purpose, by priority (the main text
first, then the layers in the order written, then adjective modifiers):

- antagonists: a part may not drive a channel whose antagonist a higher-priority part already drives (lip-corner
  raiser vs depressor on each side, eyes wide vs shut, gaze up vs down and left vs right, jaw and mouth left vs right),
  except that an explicit action ("close the eyes") beats a text part that only shows the antagonist by the way;
- an adjective modifier ("sad" in "a sad smile") only adds channels in face regions the noun leaves free, so a sad
  smile has sad brows and a smiling mouth; a modifier that is a direct action ("tight-lipped") is added whole;
- a part the parser marked "yield" (it contradicts the main text: "smile and frown at the same time") gives up its
  lip corners;
- an action's `zero` channels (closing the eyes holds eyeWide at 0) are cleared from every text part.

`layered_keys(generator, plans, seed)` replaces `generator.key_expressions(plans, seed)` in the runtime: one
generator call for all text parts of all plans, each part's key reused by every repeat of its segment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from .actions import action_head, action_weights
from .dynamics import eased_track
from .expression_space import ARKIT_CHANNELS, CHANNEL_INDEX, NUM_CHANNELS
from .generators.base import word_intensity_scale
from .timeline import DEFAULT_INTENSITY, FrameSpan, KeyPart, TimedSegment

_ACTIVE = 0.1
HELD_SHOWN = 0.25  # a "without" text part holds at rest the channels its own reading shows at least this much
HELD_MARGIN = 0.25  # ... and shows more prominently than the shown text parts by at least this share of its peak


@dataclass(frozen=True)
class LayeredKey:
    """A key expression combined from its parts; the same fields the runtime reads from a generator's key."""

    weights: np.ndarray
    concept: str
    label: str
    intensity: float
    confidence: float
    readings: tuple[tuple[str, str, float], ...] = ()  # each text part: (text, label, similarity) as the generator read it
    held: np.ndarray | None = None  # (52,) bool: channels a "without" part holds at rest (idle motion leaves them too)
    unshown: tuple[tuple[str, str, float], ...] = ()  # text parts whose own key shows nothing, as readings are given


def _side_pairs(a: str, b: str) -> list[tuple[list[int], list[int]]]:
    return [([CHANNEL_INDEX[a + s]], [CHANNEL_INDEX[b + s]]) for s in ("Left", "Right")]


def _idx(*names: str) -> list[int]:
    return [CHANNEL_INDEX[n] for n in names]


ANTAGONISTS: tuple[tuple[list[int], list[int]], ...] = tuple(
    _side_pairs("mouthSmile", "mouthFrown") + _side_pairs("eyeWide", "eyeBlink")
    + [(_idx("eyeLookUpLeft", "eyeLookUpRight"), _idx("eyeLookDownLeft", "eyeLookDownRight")),
       (_idx("eyeLookOutLeft", "eyeLookInRight"), _idx("eyeLookInLeft", "eyeLookOutRight")),
       (_idx("jawLeft"), _idx("jawRight")), (_idx("mouthLeft"), _idx("mouthRight"))]
)
"""Channel groups that pull against each other; both directions are checked."""

_REGION_PREFIXES = {"brows": ("brow",), "eyes": ("eyeBlink", "eyeWide", "eyeSquint", "cheekSquint"),
                    "gaze": ("eyeLook",), "mouth": ("mouth", "jaw", "tongue", "cheekPuff"), "nose": ("noseSneer",)}
REGION_OF = np.array([next(r for r, prefixes in _REGION_PREFIXES.items() if name.startswith(prefixes))
                      for name in ARKIT_CHANNELS])
_CORNERS = _idx("mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
                "mouthDimpleRight")


def combine(parts: Sequence[tuple[KeyPart, np.ndarray]]) -> np.ndarray:
    """(52,) weights from (part, its own weights) pairs in priority order; see the module docstring."""
    out = np.zeros(NUM_CHANNELS, dtype=np.float32)
    acted = np.zeros(NUM_CHANNELS, dtype=bool)  # channels an action part drives
    for part, weights in parts:
        w = np.asarray(weights, dtype=np.float32).copy()
        if part.role == "without":
            continue
        if part.role == "yield":
            w[_CORNERS] = 0.0
        if part.role == "modifier" and part.action is None:
            used = {REGION_OF[i] for i in np.flatnonzero(out > 2 * _ACTIVE)}
            w[np.isin(REGION_OF, list(used))] = 0.0
        for a, b in ANTAGONISTS if not out.max() <= _ACTIVE else ():  # else nothing to clash with (the first part)
            for mine, theirs in ((a, b), (b, a)):
                if out[theirs].max(initial=0) <= _ACTIVE:
                    continue
                if part.action is not None and not acted[theirs].any() and w[mine].max(initial=0) > _ACTIVE:
                    out[theirs] = 0.0  # an explicit action beats what a text part shows there by the way
                else:
                    w[mine] = 0.0
        out = np.maximum(out, w)
        if part.action is not None:
            acted |= w > 0
    shown = [(part, weights) for part, weights in parts if part.role != "without"]
    explicit = set()
    for part, weights in shown:
        if part.action is not None:
            explicit.update(np.flatnonzero(np.asarray(weights) > 0).tolist())
    for part, _ in shown:
        if part.action is not None:
            for name in part.action.zero:
                if CHANNEL_INDEX[name] not in explicit:
                    out[CHANNEL_INDEX[name]] = 0.0
    out[held_channels(parts)] = 0.0
    return np.clip(out, 0.0, 1.0)


def held_channels(parts: Sequence[tuple[KeyPart, np.ndarray]]) -> np.ndarray:
    """(52,) bool: the channels the key's "without" parts hold at rest ("stare without blinking": the lids): all of an
    action's channels; of a text part's own reading, those it shows at HELD_SHOWN or more and clearly more
    prominently (as a share of its strongest channel, by HELD_MARGIN) than every shown text part does. So "smile
    without grinning" keeps the smile's lip corners, which the grin shows no more prominently, and holds only what
    is the grin's own."""
    held = np.zeros(NUM_CHANNELS, dtype=bool)
    shown = [_prominence(w) for part, w in parts if part.role != "without" and part.action is None]
    for part, weights in parts:
        if part.role != "without":
            continue
        w = np.asarray(weights)
        if part.action is not None:
            held |= w > 0.0
            continue
        mine = _prominence(w)
        clearly_mine = np.all([mine > other + HELD_MARGIN for other in shown], axis=0) if shown else True
        held |= (w >= HELD_SHOWN) & clearly_mine
    return held


def _prominence(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float32)
    return w / w.max() if w.max() > 0 else w


def _text_part(part: KeyPart) -> bool:
    return part.action is None and part.kind == "expression"


def layered_keys(generator, plans: Sequence[Sequence[TimedSegment]], seed: int = 0,
                 recognised: Callable[[str, float], bool] | None = None) -> list[list[LayeredKey]]:
    """Keys for every segment of every plan: text parts through the generator, actions directly, then combined.

    With `recognised` (text, similarity -> names something facial), a text part that names nothing facial is left
    out of a key that has another part that does ("he had to take the rebuke with a smile on his face" is the smile,
    not the smile under a guess at "had to take the rebuke"); its reading keeps an empty label to say so."""
    gen_plans: list[list[TimedSegment]] = []
    where: list[dict[tuple[int, int], int]] = []
    for plan in plans:
        rows: list[TimedSegment] = []
        seen: dict[tuple[int, int], int] = {}
        for seg in plan:
            for part in seg.parts:
                key = (seg.group, part.index)
                if _text_part(part) and key not in seen:
                    seen[key] = len(rows)
                    rows.append(replace(seg, text=part.text, kind="expression", intensity=part.intensity,
                                        side=part.side, parts=(part,)))
        gen_plans.append(rows)
        where.append(seen)
    asked = [i for i, rows in enumerate(gen_plans) if rows]
    generated = generator.key_expressions([gen_plans[i] for i in asked], seed=seed) if asked else []
    by_plan = dict(zip(asked, generated))
    results = []
    for pi, plan in enumerate(plans):
        keys = by_plan.get(pi, [])
        out = []
        for seg in plan:
            pairs, labels, concept, confidence, readings, unshown = [], [], None, 1.0, [], []
            unread = _unread_parts(seg, keys, where[pi], recognised)
            for part in seg.parts:
                if _text_part(part):
                    k = keys[where[pi][(seg.group, part.index)]]
                    if part.index in unread:
                        readings.append((part.text, "", k.similarity))
                        continue
                    pairs.append((part, k.weights))
                    readings.append((part.text, k.label, k.similarity))
                    if part.role != "without" and _shows_nothing(k):
                        unshown.append((part.text, k.label, k.similarity))
                    if part.role == "without":
                        continue
                    labels.append(k.label)
                    if concept is None:
                        concept, confidence = k.concept, float(k.confidence)
                elif part.action is not None:
                    pairs.append((part, _action_vector(part)))
                    if part.role == "without":
                        continue
                    labels.append(part.action.name)
                    concept = concept or part.action.name.replace(" ", "_")
            weights = combine(pairs) if pairs else np.zeros(NUM_CHANNELS, dtype=np.float32)
            main = seg.parts[0] if seg.parts else None
            intensity = DEFAULT_INTENSITY if main is None or main.intensity is None else float(main.intensity)
            label = " + ".join(dict.fromkeys(labels)) or "neutral"
            out.append(LayeredKey(weights=weights, concept=concept or "neutral", label=label,
                                  intensity=intensity, confidence=confidence, readings=tuple(readings),
                                  held=held_channels(pairs), unshown=tuple(unshown)))
        results.append(out)
    return results


def _shows_nothing(key) -> bool:
    """Whether a text part's key, its words' intensity ("barely") divided out, moves no channel visibly although the
    concept it was read as is not the neutral face: the learned model found no facial action in a word it never
    trained on ("look ireful"), which would otherwise rest the face without a word."""
    if key.concept == "neutral" or key.intensity <= 0:
        return False
    return float(np.max(key.weights, initial=0.0)) / word_intensity_scale(key.intensity) < _ACTIVE


def _unread_parts(seg: TimedSegment, keys, where, recognised) -> set[int]:
    """The indices of the segment's text parts that name nothing facial, when another of its parts does."""
    if recognised is None or len(seg.parts) < 2:
        return set()
    unread = {part.index for part in seg.parts if _text_part(part)
              and not recognised(part.text, keys[where[(seg.group, part.index)]].similarity)}
    return unread if len(unread) < len(seg.parts) else set()


def _action_vector(part: KeyPart) -> np.ndarray:
    w = np.zeros(NUM_CHANNELS, dtype=np.float32)
    for name, value in action_weights(part.action, part.intensity).items():
        w[CHANNEL_INDEX[name]] = value
    return w


def head_pose(seg: TimedSegment) -> np.ndarray:
    """(yaw, pitch, roll) the segment's parts ask for at its apex (zero when none turns the head)."""
    pose = np.zeros(3, dtype=np.float32)
    for part in seg.parts:
        if part.head is not None:
            pose += np.asarray(part.head, dtype=np.float32)
        elif part.action is not None:
            target = action_head(part.action, part.intensity)
            if target is not None:
                pose += np.asarray(target, dtype=np.float32)
    return pose


def head_rotation(plan: Sequence[TimedSegment], spans: Sequence[FrameSpan]) -> np.ndarray | None:
    """(T, 3) head yaw/pitch/roll in radians eased between the segments' poses; None when no part moves the head."""
    poses = np.stack([head_pose(seg) for seg in plan])
    if not np.any(poses):
        return None
    return eased_track(spans, poses, np.zeros(3, dtype=np.float32))
