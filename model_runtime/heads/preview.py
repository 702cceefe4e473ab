"""The preview a person looks at: a contact sheet of the animation's telling frames on the default head."""

from __future__ import annotations

from . import render

MAX_PREVIEW_FRAMES = 12


def preview_frames(anim) -> list[tuple[int, str]]:
    """Frames worth showing: the start, each segment's mid-transition and apex, and the end."""
    picks: dict[int, str] = {0: "start"}
    for seg in anim.segments:
        start, apex = seg["start_frame"], seg.get("apex_frame", seg["end_frame"])
        if apex - start >= 2:
            picks.setdefault((start + apex) // 2, f"to {seg['label']}")
        picks[apex] = seg["label"]
    picks.setdefault(anim.num_frames - 1, "end")
    chosen = sorted(picks.items())
    if len(chosen) > MAX_PREVIEW_FRAMES:
        step = (len(chosen) - 1) / (MAX_PREVIEW_FRAMES - 1)
        chosen = [chosen[round(i * step)] for i in range(MAX_PREVIEW_FRAMES)]
    return chosen


def write_animation_preview(anim, path) -> None:
    """A contact sheet of the frames `preview_frames` picks, captioned with time and label."""
    picks = preview_frames(anim)
    captions = [f"{frame / anim.fps:.2f}s  {label}" for frame, label in picks]
    weights = anim.frames[[frame for frame, _ in picks]]
    title = anim.instruction if len(anim.instruction) <= 90 else anim.instruction[:87] + "..."
    render.write_contact_sheet(path, weights, captions, title=title)
