"""Match a rig's shape-key names to the 52 ARKit channels.

Rigs in the wild spell the ARKit shapes many ways: `mouthSmileLeft` (Apple), `mouthSmile_L` (ICT-FaceKit and many DCC
rigs), `MouthSmileLeft`, `mouth_smile_l`, `Mouth_Smile_L` (Character Creator), `mouthSmile.L` (Blender's side
convention), `L_mouthSmile`, often behind a prefix (`Face.`, `BS_`, `blendShape1.`, `ARKit_`, `A01_`) or with
Blender's `.001` duplicate suffix. Matching is therefore done on words: case and separators are ignored, a side word
(`L`, `Left`, `R`, `Right`) is taken from the end or the start, known prefixes are dropped, and Character Creator 4's
own words are translated (`Brow_Drop` = browDown, `Cheek_Raise` = cheekSquint, `Mouth_Up_Upper` = mouthUpperUp,
`Mouth_Down_Lower` = mouthLowerDown, `Eye_L_Look_L` = the left eye looking to the character's left = eyeLookOutLeft).

Two rules keep it from guessing: a name without a side never matches a sided channel (`mouthSmile`, `eyeBlink` are
reported unmatched), and a sided name for an unsided ARKit channel (`browInnerUp_L`, `Cheek_Puff_R`,
`Mouth_Roll_In_Lower_L`, CC's four-way `Mouth_Funnel_Up_L`...) is a *part* of that channel: when a rig has only parts,
`ChannelMatch.split` lists them so the channel's value drives all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from ..expression_space import ARKIT_CHANNELS, CHANNEL_INDEX

_SIDE_WORDS = {"l": "left", "left": "left", "r": "right", "right": "right"}
_PREFIX_WORDS = frozenset({
    "arkit", "apple", "bs", "blend", "blendshape", "blendshapes", "shape", "shapes", "shapekey", "shapekeys", "sk",
    "key", "keys", "face", "facial", "head", "morph", "morphs", "target", "targets", "cc", "base", "mesh", "geo",
    "exp", "expr", "expression", "expressions", "ict",
})
_NUMBERED_PREFIX = re.compile(r"^(?:[a-z]{0,3}\d+|(?:blendshape|bs|shape|key|morph|target)s?\d*)$")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_BLENDER_DUPLICATE = re.compile(r"\.\d{3}$")

# Words other rigs use for an ARKit base (side removed), all lower case with no separators.
_BASE_SYNONYMS: dict[str, str] = {
    "browdrop": "browdown",                 # Character Creator 4
    "browraiseinner": "browinnerup",        # CC4 (split L/R)
    "browraiseouter": "browouterup",        # CC4
    "cheekraise": "cheeksquint",            # CC4
    "eyeclosed": "eyeblink",                # VRChat Unified Expressions
    "eyeclose": "eyeblink",
    "mouthdownlower": "mouthlowerdown",     # CC4
    "mouthupupper": "mouthupperup",         # CC4
    "mouthrollinlower": "mouthrolllower",   # CC4 (split L/R)
    "mouthrollinupper": "mouthrollupper",   # CC4 (split L/R)
    "mouthclosed": "mouthclose",
}
# Bases that are always a part of an unsided channel (CC4 splits funnel and pucker into upper/lower x left/right).
_PART_BASES: dict[str, str] = {
    "mouthfunnelup": "mouthfunnel", "mouthfunneldown": "mouthfunnel",
    "mouthpuckerup": "mouthpucker", "mouthpuckerdown": "mouthpucker",
}


def _split_canonical(name: str) -> tuple[str, str | None]:
    words = [w.lower() for w in _WORDS.findall(name)]
    side = _SIDE_WORDS.get(words[-1]) if words[-1] in ("left", "right") else None
    return "".join(words[:-1] if side else words), side


_TABLE: dict[tuple[str, str | None], str] = {_split_canonical(ch): ch for ch in ARKIT_CHANNELS}
_UNSIDED_BASES: dict[str, str] = {base: ch for (base, side), ch in _TABLE.items() if side is None}
assert len(_TABLE) == len(ARKIT_CHANNELS)


class ParsedName(NamedTuple):
    """A shape-key name read as an ARKit channel; `part` True when it is one half (or quarter) of an unsided one."""

    channel: str
    part: bool


def _words(name: str) -> list[str]:
    name = _BLENDER_DUPLICATE.sub("", name.strip())
    # Namespaces: keep what follows the last '.', ':' or '|', unless that is only a side word (Blender's ".L").
    parts = [p for p in re.split(r"[.:|]", name) if p]
    if not parts:
        return []
    keep = parts[-1:]
    if len(parts) > 1 and parts[-1].lower() in _SIDE_WORDS:
        keep = parts[-2:]
    segments = [s for p in keep for s in re.split(r"[^A-Za-z0-9]+", p) if s]
    while len(segments) > 1 and (segments[0].lower() in _PREFIX_WORDS or _NUMBERED_PREFIX.match(segments[0].lower())):
        segments.pop(0)
    while len(segments) > 1 and segments[-1].isdigit():  # "mouthSmile_L_001"
        segments.pop()
    return [w.lower() for s in segments for w in _WORDS.findall(s)]


def _lookup(base: str, side: str | None) -> ParsedName | None:
    if base in _PART_BASES:
        return ParsedName(_UNSIDED_BASES[_PART_BASES[base]], True)
    base = _BASE_SYNONYMS.get(base, base)
    if (base, side) in _TABLE:
        return ParsedName(_TABLE[(base, side)], False)
    if side is not None and base in _UNSIDED_BASES:
        return ParsedName(_UNSIDED_BASES[base], True)
    return None


def parse_channel_name(name: str) -> ParsedName | None:
    """Read one shape-key name; None when it is not (part of) an ARKit channel."""
    words = _words(name)
    if not words:
        return None
    # Character Creator's gaze keys: Eye_<eye side>_Look_<direction>; looking towards the eye's own side is "out".
    if len(words) == 4 and words[0] == "eye" and words[2] == "look" and words[1] in _SIDE_WORDS:
        eye, direction = _SIDE_WORDS[words[1]], words[3]
        if direction in ("up", "down"):
            return ParsedName(f"eyeLook{direction.title()}{eye.title()}", False)
        if direction in _SIDE_WORDS:
            way = "Out" if _SIDE_WORDS[direction] == eye else "In"
            return ParsedName(f"eyeLook{way}{eye.title()}", False)
        return None
    side = None
    if len(words) > 1 and words[-1] in _SIDE_WORDS:
        side, words = _SIDE_WORDS[words[-1]], words[:-1]
    elif len(words) > 1 and words[0] in _SIDE_WORDS:
        side, words = _SIDE_WORDS[words[0]], words[1:]
    base = "".join(words)
    found = _lookup(base, side)
    if found is None and side is None:
        # A side glued on without a case change: "mouthsmileleft", "mouthsmile_l" is handled above.
        for suffix in ("left", "right", "l", "r"):
            if base.endswith(suffix) and len(base) > len(suffix):
                found = _lookup(base[: -len(suffix)], _SIDE_WORDS[suffix])
                if found is not None and not found.part:
                    break
                found = None
    return found


def normalize_channel_name(name: str) -> str | None:
    """The canonical ARKit channel a shape-key name stands for, or None (also None for a part such as
    `browInnerUp_L`; see `parse_channel_name` and `ChannelMatch.split`)."""
    parsed = parse_channel_name(name)
    return parsed.channel if parsed is not None and not parsed.part else None


@dataclass(frozen=True)
class ChannelMatch:
    """How a rig's shape keys cover the 52 ARKit channels.

    mapping: ARKit channel -> the rig's key. split: unsided ARKit channel -> the rig's keys that each hold a part of it
    (only for channels without a whole key; drive every part with the channel's value). unmatched_channels: channels
    with neither, canonical order. unmatched_names: the rig's keys that are not used (not ARKit, or parts of a channel
    that also has a whole key), in input order. ambiguous: channel -> every key that read as it, the chosen one first.
    """

    mapping: dict[str, str]
    unmatched_channels: tuple[str, ...]
    unmatched_names: tuple[str, ...]
    ambiguous: dict[str, tuple[str, ...]]
    split: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def keys_for(self, channel: str) -> tuple[str, ...]:
        """The rig keys to drive with one ARKit channel (empty when the rig lacks it)."""
        if channel in self.mapping:
            return (self.mapping[channel],)
        return self.split.get(channel, ())


def _preference(channel: str, name: str) -> tuple:
    """Exact ARKit spelling first, then the shortest name, then alphabetical: deterministic."""
    return (name != channel, len(name), name)


def match_channels(names: Iterable[str]) -> ChannelMatch:
    """Match a rig's shape-key names (e.g. a Blender mesh's `shape_keys.key_blocks` names) to ARKit channels."""
    unique = list(dict.fromkeys(str(n) for n in names))
    whole: dict[str, list[str]] = {}
    parts: dict[str, list[str]] = {}
    unparsed: list[str] = []
    for name in unique:
        parsed = parse_channel_name(name)
        if parsed is None:
            unparsed.append(name)
        else:
            (parts if parsed.part else whole).setdefault(parsed.channel, []).append(name)
    mapping, ambiguous = {}, {}
    for channel in ARKIT_CHANNELS:
        if channel in whole:
            ranked = tuple(sorted(whole[channel], key=lambda n, c=channel: _preference(c, n)))
            mapping[channel] = ranked[0]
            if len(ranked) > 1:
                ambiguous[channel] = ranked
    split = {ch: tuple(sorted(ns)) for ch, ns in parts.items() if ch not in mapping}
    split = {ch: split[ch] for ch in ARKIT_CHANNELS if ch in split}
    used = set(mapping.values()) | {n for ns in split.values() for n in ns}
    unmatched_names = tuple(n for n in unique if n not in used and (n in unparsed or _is_spare(n, mapping, ambiguous)))
    unmatched_channels = tuple(ch for ch in ARKIT_CHANNELS if ch not in mapping and ch not in split)
    return ChannelMatch(mapping=mapping, unmatched_channels=unmatched_channels, unmatched_names=unmatched_names,
                        ambiguous=ambiguous, split=split)


def _is_spare(name: str, mapping: dict[str, str], ambiguous: dict[str, tuple[str, ...]]) -> bool:
    """A key that read as a channel but is not used: a part of a channel with a whole key. Losing candidates of an
    ambiguous channel are reported in `ambiguous`, not here."""
    parsed = parse_channel_name(name)
    return parsed is not None and parsed.part and parsed.channel in mapping


assert all(normalize_channel_name(ch) == ch for ch in ARKIT_CHANNELS) and len(CHANNEL_INDEX) == 52
