"""From parsed segments to a timed plan: when each expression starts, how long it takes to arrive, how long it holds.

Defaults follow the dynamics facts of the knowledge base: macro-expressions last about 0.5-4 s, deliberate onsets are
fast, slow ones take over a second (Schmidt et al. 2006, 2009; Frank, Ekman & Friesen 1993). Times are kept in seconds
until the very end so that a plan converts to any fps with at most half a frame of rounding per boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from .actions import Action, HeadPose
from .errors import InputError
from .instructions import MIN_PERIOD_S
from .limits import MAX_DURATION_S, check_duration

DEFAULT_INTENSITY = 0.75
TRANSITION_S = {None: 0.5, "slow": 1.2, "fast": 0.25, "sudden": 0.1}
HOLD_S = {None: 1.0, "slow": 1.2, "fast": 0.8, "sudden": 0.8}
START_HOLD_S = 0.5
RETURN_TRANSITION_S = 0.6


@dataclass(frozen=True)
class KeyPart:
    """One simultaneous part of a key: the main text (index 0) or a layer, as the key generator and the layer
    combination need it. `head` overrides the action's head pose (the second swing of a head shake)."""

    index: int
    text: str
    kind: str
    intensity: float | None
    side: str | None
    action: Action | None = None
    role: str = "main"
    head: HeadPose | None = None
    repeat: int = 1
    keep: bool = False  # the count is open ("keep blinking"): a given duration decides how many peaks fit
    period: float | None = None  # "every 3 seconds": seconds from one peak to the next


@dataclass(frozen=True)
class TimedSegment:
    """One segment of the plan; times in seconds from the start of the animation.

    A repeated action ("blink twice") is laid out as peaks and "release" segments; all of them share `group` (the
    parsed segment they come from), and `parts` lists what is shown at this key."""

    text: str
    kind: str
    start_s: float
    transition_s: float
    hold_s: float
    intensity: float | None
    side: str | None
    speed: str | None
    manner: tuple[str, ...]
    is_start: bool
    parts: tuple[KeyPart, ...] = ()
    group: int = 0

    @property
    def apex_s(self) -> float:
        return self.start_s + self.transition_s

    @property
    def end_s(self) -> float:
        return self.start_s + self.transition_s + self.hold_s


@dataclass(frozen=True)
class FrameSpan:
    start_frame: int
    apex_frame: int
    end_frame: int


def plan_segments(segments: Sequence, fps: int, duration_s: float | None = None,
                  notes: list[str] | None = None) -> list[TimedSegment]:
    """Lay parsed segments end to end; `duration_s` (if given) rescales the whole plan to that length. A segment placed
    on the clock ("at 2 seconds", "from 2 to 5 seconds") waits for its start, the face before it held meanwhile, and
    ends at its end; a place that cannot be kept adds a sentence to `notes`."""
    if not segments:
        raise InputError("The instruction names no expression to animate.")
    plan: list[TimedSegment] = []
    clock = 0.0
    for index, seg in enumerate(segments):
        transition = _seconds(seg, "transition", fps)
        hold = _seconds(seg, "hold", fps)
        speed = getattr(seg, "speed", None)
        is_start = bool(getattr(seg, "is_start", False)) and index == 0
        clock, span = _place_on_clock(seg, clock, plan, notes)
        if span is not None:  # "from 2 to 5 seconds": the part fills the window, arriving as it would
            if hold is not None:
                _note(notes, f"'{seg.text}' was given both a time and a window on the clock; the window is used.")
            transition = min(transition if transition is not None else TRANSITION_S.get(speed, TRANSITION_S[None]),
                             span / 2)
            hold = span - transition
        given = (transition, hold)
        if transition is None:
            transition = 0.0 if is_start else (RETURN_TRANSITION_S if seg.kind == "return" and speed is None
                                               else TRANSITION_S.get(speed, TRANSITION_S[None]))
        if hold is None:
            hold = START_HOLD_S if is_start else HOLD_S.get(speed, HOLD_S[None])
        for what, value in (("transition", transition), ("hold", hold)):
            if not math.isfinite(value) or value < 0 or value > MAX_DURATION_S:
                raise InputError(f"The {what} time of '{seg.text}' must be between 0 and {MAX_DURATION_S:g} seconds, "
                                 f"not {value:g}.")
        base = TimedSegment(text=seg.text, kind=seg.kind, start_s=clock, transition_s=transition, hold_s=hold,
                            intensity=seg.intensity, side=seg.side, speed=speed,
                            manner=tuple(getattr(seg, "manner", ())), is_start=is_start, parts=key_parts(seg),
                            group=index)
        for beat in _beats(base, given):
            plan.append(replace(beat, start_s=clock))
            clock += beat.transition_s + beat.hold_s
    total = clock
    if duration_s is not None:
        check_duration(duration_s)
        if total <= 0:
            raise InputError("The instruction's timings add up to zero seconds, so they cannot be stretched.")
        plan = [_scaled(s, duration_s / total) for s in plan]
        total = duration_s
    if total > MAX_DURATION_S + 1e-6:  # summed floats of many beats land a hair above a plan asked at the limit
        raise InputError(f"The instruction asks for {total:g} seconds of animation; the limit is {MAX_DURATION_S:g}.")
    if round(total * fps) < 1:
        raise InputError("The instruction's timings add up to less than one frame; give it some time.")
    return plan


def _place_on_clock(seg, clock: float, plan: list[TimedSegment], notes: list[str] | None
                    ) -> tuple[float, float | None]:
    """The clock at which `seg` starts (after any wait its "at" asks for: the plan's last face held, or the start
    face before the first) and the window its "until" leaves it (None: its own length)."""
    at, until = getattr(seg, "at_s", None), getattr(seg, "until_s", None)
    if at is not None:
        if at < clock - 1e-9:
            _note(notes, f"'{seg.text}' was asked to start at {at:g} s, but what comes before it lasts until "
                         f"{clock:g} s, so it starts then.")
        elif at > clock:
            if plan:
                plan[-1] = replace(plan[-1], hold_s=plan[-1].hold_s + (at - clock))
            clock = at
    if until is None:
        return clock, None
    if until <= clock + 1e-9:
        _note(notes, f"'{seg.text}' was asked to end at {until:g} s, but it cannot start before {clock:g} s, so it "
                     f"keeps its own length.")
        return clock, None
    return clock, until - clock


def _note(notes: list[str] | None, sentence: str) -> None:
    if notes is not None and sentence not in notes:
        notes.append(sentence)


# One repeated peak of an action with no timing of its own ("smile twice"): onset, hold, release, gap (s).
REPEAT_TIMING = (0.3, 0.25, 0.3)
REPEAT_GAP_S = 0.15
PULSE_GAP_S = 0.2  # between blinks/nods: voluntary repeated blinks come about 2-3 per second
MAX_OPEN_PEAKS = 200  # "keep blinking for N seconds": 100 s at the voluntary rate; 600 s spreads them 3 s apart
MIN_PACE = 0.3  # a given time compresses a repeat's phases to no less than this share of their natural length
SPEED_FACTOR = {None: 1.0, "slow": 1.6, "fast": 0.7, "sudden": 0.6}


def key_parts(seg) -> tuple[KeyPart, ...]:
    """The parts of a parsed segment (main text first, then its layers) as the plan carries them."""
    main = KeyPart(0, seg.text, seg.kind, seg.intensity, seg.side, getattr(seg, "action", None),
                   repeat=max(1, int(getattr(seg, "repeat", 1) or 1)), keep=bool(getattr(seg, "keep", False)),
                   period=getattr(seg, "period", None))
    layers = tuple(KeyPart(i, layer.text, layer.kind, layer.intensity, layer.side, layer.action, layer.role,
                           repeat=max(1, int(layer.repeat or 1)), keep=bool(layer.keep), period=layer.period)
                   for i, layer in enumerate(getattr(seg, "layers", ()), start=1))
    return (main, *layers)


def _pulses(action) -> bool:
    return action is not None and action.pulse


def _beats(base: TimedSegment, given: tuple[float | None, float | None]) -> list[TimedSegment]:
    """A segment as it plays: itself, or for a repeated part, peaks and releases with natural spacing.

    A duration given to a repeated part ("keep blinking for 10 seconds", "blink twice over 5 seconds") is the time
    the whole repetition takes, not each peak's hold: an open count fills it at the action's natural rate or the
    stated one ("every 2 seconds"), a stated count is spread over it."""
    repeats = _repeats_of(base)
    if not repeats:
        return [base]
    index, count = next(iter(repeats)), max(repeats.values())
    part = base.parts[index]
    action = part.action
    pulse = action is not None and action.pulse
    onset, hold, release = action.timing if pulse else REPEAT_TIMING
    factor = SPEED_FACTOR.get(base.speed, 1.0)
    onset, hold, release = onset * factor, hold * factor, release * factor
    gap = (PULSE_GAP_S if pulse else REPEAT_GAP_S) * factor
    poses = (None, *(action.poses if action is not None else ()))
    # A given time is the whole repetition's only where the words repeat: a count, an open count ("keep", loop
    # words, rates) or a head shake (it swings to and fro by nature). A single blink, wink or nod given a time
    # ("wink and hold it for 3 seconds") holds its pose, each pose for its share.
    open_count = any(base.parts[i].keep for i in repeats) or (len(poses) > 1 and count == 1)
    period = next((base.parts[i].period for i in repeats if base.parts[i].period is not None), None)
    repeated = count > 1 or open_count
    span = None if given == (None, None) or not repeated else (given[0] or 0.0) + (given[1] or 0.0)
    if given[0] is not None and not repeated:
        onset = given[0]
    if given[1] is not None and not repeated:
        hold = given[1] / len(poses)
    rest = tuple(p for i, p in enumerate(base.parts) if i not in repeats)
    beats: list[TimedSegment] = []
    if rest and any(p.kind == "expression" for p in rest):  # the held parts arrive first ("smile while blinking")
        arrival, settle = base.transition_s, min(base.hold_s, 0.3)
        if span is not None:  # their arrival is part of the given time: at most half of it
            k = min(1.0, 0.5 * span / max(arrival + settle, 1e-9))
            arrival, settle = arrival * k, settle * k
            span -= arrival + settle
        beats.append(replace(base, kind="release", parts=rest, transition_s=arrival, hold_s=settle))
    if period is not None:  # "every 3 seconds": one peak fitted to the period, the spare time in its gap
        _, onset, hold, release, gap = _fit_repeats(period, 1, False, True, len(poses), onset, hold, release, gap)
        if span is None and open_count:  # "blink every 2 minutes": as many as the longest animation holds
            count = max(1, min(count, int(MAX_DURATION_S // period)))
    if span is not None:
        count, onset, hold, release, gap = _fit_repeats(span, count, open_count, pulse, len(poses), onset, hold,
                                                        release, gap, stated_rate=period is not None)
    for _ in range(count):
        for k, pose in enumerate(poses):
            shown = tuple(p if p.index != index or pose is None else replace(p, head=pose) for p in base.parts)
            beats.append(replace(base, parts=shown, transition_s=onset * (2 if k else 1), hold_s=hold,
                                 is_start=False))
        beats.append(replace(base, kind="release", parts=rest, transition_s=release, hold_s=gap, is_start=False))
    if span is None and rest and any(p.kind == "expression" for p in rest):
        beats[-1] = replace(beats[-1], hold_s=base.hold_s)
    if base.is_start:  # "from blinking for 4 seconds to ...": the 4 s are the blinks', not the rest before them
        beats.insert(0, replace(base, parts=rest, transition_s=0.0,
                                hold_s=START_HOLD_S if span is not None else base.hold_s))
    return beats


def _peak_period(onset: float, hold: float, release: float, gap: float, poses: int) -> float:
    """Seconds one peak takes: its onsets (a second pose swings twice as far), holds, release and the gap after."""
    return onset * (2 * poses - 1) + hold * poses + release + gap


def _fit_repeats(span: float, count: int, open_count: bool, into_gap: bool, poses: int, onset: float, hold: float,
                 release: float, gap: float, stated_rate: bool = False) -> tuple[int, float, float, float, float]:
    """(count, onset, hold, release, gap) that make `count` peaks last `span` seconds in all.

    An open count becomes as many peaks as the natural period fits (at least one, at most MAX_OPEN_PEAKS: past
    that, as over a long shot, they spread out towards a resting blink rate). Time over the natural length goes to
    the gaps with `into_gap` (a pulse: a blink stays a blink; a stated rate) and to the holds otherwise (a smile held
    longer); a span shorter than natural compresses every phase alike, down to MIN_PACE of natural (the plan then
    runs longer)."""
    period = _peak_period(onset, hold, release, gap, poses)
    if open_count:  # a rate the user stated is kept up to the fastest allowed; an unstated one spreads past 200
        cap = round(MAX_DURATION_S / MIN_PERIOD_S) if stated_rate else MAX_OPEN_PEAKS
        count = int(min(cap, max(1, round(span / period))))
    spare = span - count * period
    if spare < 0:  # faster than natural, but never so fast that a peak vanishes between two frames
        k = max(span / (count * period), MIN_PACE)
        return count, onset * k, hold * k, release * k, gap * k
    if into_gap:
        return count, onset, hold, release, gap + spare / count
    return count, onset, hold + spare / (count * poses), release, gap


def _repeats_of(base: TimedSegment) -> dict[int, int]:
    """{part index: peaks} for every part that repeats or pulses (blink, nod): they peak together, on the first
    one's timing ("blink and nod" is one beat, not a held nod with a blink); the others are held."""
    if base.kind != "expression":
        return {}
    return {p.index: p.repeat for p in base.parts if p.repeat > 1 or _pulses(p.action)}




def frame_spans(plan: Sequence[TimedSegment], fps: int) -> list[FrameSpan]:
    """Round each boundary once, so adjacent segments share a frame and total length is kept to within a frame: a
    segment ends on the frame the next one starts on (their times, summed separately, can round either side)."""
    starts = [round(s.start_s * fps) for s in plan]
    ends = starts[1:] + [round(plan[-1].end_s * fps)] if plan else []
    return [FrameSpan(start, min(max(round(s.apex_s * fps), start), end), end)
            for s, start, end in zip(plan, starts, ends)]


def crowded_repeats(plan: Sequence[TimedSegment], fps: int) -> list[str]:
    """A sentence for each repeated part whose peaks and releases cannot each have a frame at `fps` ("blink three
    times" at 2 fps: the blinks merge), naming the lowest frame rate that shows them all."""
    def crowded(rate: int) -> set[int]:
        spans = frame_spans(plan, rate)
        return {a.group for (a, sa), (b, sb) in zip(zip(plan, spans), zip(plan[1:], spans[1:]))
                if a.group == b.group and sb.apex_frame <= sa.apex_frame}

    groups = crowded(fps)
    if not groups:
        return []
    enough = next((rate for rate in range(fps + 1, 121) if not crowded(rate) & groups), None)
    texts = dict.fromkeys(s.text for s in plan if s.group in groups)
    advice = f"; {enough} fps or more shows them all" if enough else ""
    return [f"At {fps} fps the repeats of '{text}' fall between frames and do not all show{advice}." for text in texts]


def _seconds(seg, what: str, fps: int) -> float | None:
    value = getattr(seg, f"{what}_s", None)
    frames = getattr(seg, f"{what}_frames", None)
    if value is None and frames is not None:
        value = frames / fps
    return None if value is None else float(value)


def _scaled(seg: TimedSegment, k: float) -> TimedSegment:
    return replace(seg, start_s=seg.start_s * k, transition_s=seg.transition_s * k, hold_s=seg.hold_s * k)
