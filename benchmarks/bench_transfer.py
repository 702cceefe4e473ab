"""Shape transfer benchmark: the default head's 52 ARKit shapes transferred onto heads the project did not make, and
onto variants of the default head, each beside a naive baseline run in the same process. Exits 1 when a goal is
missed.

Run: .venv/bin/python benchmarks/bench_transfer.py [--only ict|canonical|variants] [--threads N]

Every number is a gate (GOALS): the exit status is 1 when any is missed, and the timing goal is meant for an idle
machine (say the load average when you quote it).

* ICT-FaceKit (tests/data/ict, MIT; the whole 26,719-vertex head with eyeballs, teeth and lashes, as an artist
  would bring it): per-shape relative error |pred - truth| / |truth| and cosine against ICT's own artist-made
  shapes on its face region (vertices 0-9408), over the 51 shapes ICT has (tongueOut aside; ICT's left and right
  browInnerUp and cheekPuff are summed); the time includes landmark detection.
* Every test head (ICT and MediaPipe's 468-vertex canonical face mesh, whose eyes and mouth are closed): eyeBlink
  per eye closes its own lid gap and leaves the other eye alone, jawOpen parts the inner lips, few face triangles
  flip (mouthClose judged on top of jawOpen, as ARKit uses it: alone it pushes the lips through each other, in
  ICT's own shapes too). The lid and lip points are found from each mesh's own construction (tests/transfer_heads.py).
  Beside the flipped count (a normal turned by more than 90 degrees, the issue's measure and gate) the triangles
  folded against their neighbours are printed: a lip's tiny inner-corner triangles turn forward past 90 degrees with
  their neighbours as the jaw opens, in ICT's own jawOpen too, which the flipped count counts and the folded does not.
* The canonical mesh again with its lids marked as an artist would (the vertex groups I2FET upper_lid_left, ...,
  here from MediaPipe's numbering, which is the mesh's own): its eyes are sewn shut, so a render shows the detector a
  closed eye and the automatic lid lines are wrong. Printed and gated apart from the automatic run.
* ICT's eyelashes (parts the default head does not have): relative error and cosine against ICT's own lash shapes in
  eyeBlink, eyeWide and eyeSquint, and the lash vertices a full blink puts behind the closed lid, against ICT's own
  blinks' count.
* Variants (tests/mesh_variants.py): remeshed, re-proportioned, posed, holed and combined copies of the default
  head's skin whose true deltas are known, through the same default call; mean, median and worst five per-shape
  errors, and each variant's mean against a 10% gate; blinks closing their own eye and leaving the other (the lids
  found from each variant's true blinks, as on ICT).

Baselines: on ICT and the canonical mesh, rigid alignment (rotation, scale, translation) and a nearest-vertex copy;
on the variants, the closest-point copy on the method's own registration. On a CPU that other processes keep busy,
torch's default threads can make timings several times slower and noisy, where --threads 1 stays steady.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mesh_variants import closest_point_copy, relative_errors, standard_variants  # noqa: E402
from transfer_heads import (LASH_SHAPES, canonical_lid_groups, flipped_share, folded_share, gap_closure,  # noqa: E402
                            ict_scores, lid_closure, lids_from_blink, lip_parting, load_canonical, load_ict,
                            load_ict_eye_parts, part_scores, skin_and_parts, through_skin)
from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX  # noqa: E402
from model_runtime.heads.head import load_default_head  # noqa: E402
from model_runtime.rigs.registration import similarity  # noqa: E402
from model_runtime.rigs.shape_transfer import shape_in_use, transfer_default_head_shapes  # noqa: E402

GOALS = {
    "ICT mean relative error": ("<=", 0.50),
    "ICT mean cosine": (">=", 0.85),
    "blink closes its own eye": (">=", 0.80),
    "blink leaves the other eye": ("<=", 0.10),
    "jawOpen parts the inner lips (mouth widths)": (">=", 0.25),
    "flipped face triangles, worst shape": ("<", 0.001),
    "variants combined mean error": ("<=", 0.075),
    "variant mean error, worst variant": ("<=", 0.10),
    "ICT 27k-vertex head, seconds": ("<=", 20.0),
    "ICT lashes mean relative error": ("<=", 0.70),
    "ICT lash vertices behind the closed lid, share of ICT's own": ("<=", 1.0),
}
GROUPED = "canonical mesh with its lid groups (not automatic)"
GOALS.update({f"{GROUPED}: {key}": GOALS[key] for key in ("blink closes its own eye", "blink leaves the other eye",
                                                          "jawOpen parts the inner lips (mouth widths)",
                                                          "flipped face triangles, worst shape")})
# The README's mean error per variant; each is a goal with 0.5 points of tolerance (the README rounds to 0.1 point)
VARIANT_CLAIMS = {"remeshed (quad dual)": 0.033, "remeshed (triangle dual)": 0.022, "re-proportioned": 0.052,
                  "rotated 90deg, tilted axis": 0.004, "Y-up, cm, translated": 0.003, "holes, remeshed, Y-up": 0.029}
VARIANT_TOLERANCE = 0.005
GOALS.update({f"{name}: mean error (README {claim:.1%} + 0.5 points)": ("<=", round(claim + VARIANT_TOLERANCE, 4))
              for name, claim in VARIANT_CLAIMS.items()})


def describe(errors: np.ndarray, names=ARKIT_CHANNELS) -> str:
    worst = np.argsort(-errors)[:5]
    return (f"mean {errors.mean():6.1%}  median {np.median(errors):6.1%}  worst: "
            + ", ".join(f"{names[k]} {errors[k]:.1%}" for k in worst))


def naive(target_vertices, target_triangles) -> np.ndarray:
    """Rigid alignment + nearest source vertex: the default head's deltas copied, rotated and scaled."""
    head = load_default_head()
    keep = head.vertex_parts == 0
    tris = head.triangles().astype(np.int64)
    remap = np.full(head.num_vertices, -1)
    remap[keep] = np.arange(int(keep.sum()))
    rotation, scale, translation = similarity(head.vertices[keep], remap[tris[keep[tris].all(1)]],
                                              target_vertices, target_triangles)
    placed = scale * head.vertices.astype(np.float64) @ rotation.T + translation
    nearest = np.empty(target_vertices.shape[0], dtype=np.int64)
    placed_t = torch.as_tensor(placed, dtype=torch.float32)
    for start in range(0, target_vertices.shape[0], 4096):
        chunk = torch.as_tensor(target_vertices[start:start + 4096], dtype=torch.float32)
        nearest[start:start + 4096] = torch.cdist(chunk, placed_t).argmin(dim=1).numpy()
    return scale * head.deltas[:, nearest].astype(np.float64) @ rotation.T


def checks(head, deltas) -> dict[str, float]:
    """The per-head checks: worst over both eyes, and the worst shape's flips."""
    own = min(lid_closure(head.vertices, deltas[CHANNEL_INDEX[c]], head.openings, eye)
              for eye, c in enumerate(("eyeBlinkLeft", "eyeBlinkRight")))
    other = max(abs(lid_closure(head.vertices, deltas[CHANNEL_INDEX[c]], head.openings, 1 - eye))
                for eye, c in enumerate(("eyeBlinkLeft", "eyeBlinkRight")))
    face_tris = head.triangles[head.face_triangles]
    flips = [flipped_share(head.vertices, face_tris, shape_in_use(deltas, k)) for k in range(len(deltas))]
    folds = [folded_share(head.vertices, face_tris, shape_in_use(deltas, k)) for k in range(len(deltas))]
    return {"blink closes its own eye": own, "blink leaves the other eye": other,
            "jawOpen parts the inner lips (mouth widths)": lip_parting(head.vertices, deltas[CHANNEL_INDEX["jawOpen"]],
                                                                      head.openings),
            "flipped face triangles, worst shape": max(flips), "_worst flip shape": int(np.argmax(flips)),
            "_over": int(np.sum(np.array(flips) >= 0.001)), "_folded": max(folds),
            "_worst fold shape": int(np.argmax(folds))}


def show_checks(label: str, values: dict[str, float]) -> None:
    print(f"  {label:9s} blink own eye {values['blink closes its own eye']:+.0%}, other eye "
          f"{values['blink leaves the other eye']:.0%}; jawOpen lip parting "
          f"{values['jawOpen parts the inner lips (mouth widths)']:+.0%} of the mouth width; flipped face triangles "
          f"{values['flipped face triangles, worst shape']:.2%} (worst: "
          f"{ARKIT_CHANNELS[values['_worst flip shape']]}; {values['_over']} shapes at 0.1% or more), folded against "
          f"their neighbours {values['_folded']:.2%} (worst: {ARKIT_CHANNELS[values['_worst fold shape']]})")


def run_heads(args, measured: dict[str, list[float]]) -> None:
    heads = []
    if "ict" in args.only or not args.only:
        heads.append(load_ict(whole=True))
    if "canonical" in args.only or not args.only:
        heads.append(load_canonical())
    for head in heads:
        began = time.perf_counter()
        result = transfer_default_head_shapes(head.vertices, head.triangles)
        seconds = time.perf_counter() - began
        ours = result.deltas.astype(np.float64)
        began = time.perf_counter()
        base = naive(head.vertices, head.triangles)
        base_seconds = time.perf_counter() - began
        print(f"\n{head.name}: {head.vertices.shape[0]} vertices, {head.triangles.shape[0]} triangles; transfer "
              f"{seconds:.1f} s (registration {result.registration.seconds:.1f} s), baseline {base_seconds:.1f} s")
        for note in result.notes:
            print(f"  note: {note}")
        for label, deltas in (("transfer", ours), ("baseline", base)):
            if head.truth is not None:
                err, cos = ict_scores(deltas, head)
                print(f"  {label:9s} relative error {describe(err, head.channels)}; mean cosine {cos.mean():.3f}")
                if label == "transfer":
                    measured["ICT mean relative error"].append(err.mean())
                    measured["ICT mean cosine"].append(cos.mean())
            values = checks(head, deltas)
            show_checks(label, values)
            if label == "transfer":
                for key, value in values.items():
                    if not key.startswith("_"):
                        measured[key].append(value)
        if head.truth is None:
            run_grouped(head, measured)
        else:
            truth = np.zeros((len(ARKIT_CHANNELS),) + head.vertices.shape)
            truth[[CHANNEL_INDEX[c] for c in head.channels]] = head.truth
            show_checks("ICT's own", checks(head, truth))
            measured["ICT 27k-vertex head, seconds"].append(seconds)
            show_lashes(head, {"transfer": ours, "baseline": base}, measured)


def run_grouped(head, measured: dict[str, list[float]]) -> None:
    """The canonical mesh with its four lid margins given as the user's lid groups (`canonical_lid_groups`)."""
    began = time.perf_counter()
    result = transfer_default_head_shapes(head.vertices, head.triangles, lids=canonical_lid_groups())
    print(f"  with the lid groups I2FET upper_lid_left, lower_lid_left, upper_lid_right, lower_lid_right marked from "
          f"the mesh's own MediaPipe numbering (not automatic): transfer {time.perf_counter() - began:.1f} s")
    for note in result.notes:
        print(f"    note: {note}")
    values = checks(head, result.deltas.astype(np.float64))
    show_checks("grouped", values)
    for key, value in values.items():
        if not key.startswith("_"):
            measured[f"{GROUPED}: {key}"].append(value)


def show_lashes(head, predictions: dict[str, np.ndarray], measured: dict[str, list[float]]) -> None:
    """ICT's eyelashes (its part layout's `eyelashes`) against ICT's own lash shapes in eyeBlink, eyeWide and eyeSquint,
    and how many lash vertices a full blink puts behind the closed lid that were in front of it (ICT's own too)."""
    eye = load_ict_eye_parts(head)
    lashes = eye.parts["eyelashes"]
    _, _, skin_tri = skin_and_parts(head)
    blinks = [eye.truth[head.channels.index(c)] for c in ("eyeBlinkLeft", "eyeBlinkRight")]
    own = [through_skin(head.vertices, skin_tri, blink, lashes) for blink in blinks]
    print(f"  lashes ({lashes.size} vertices; {', '.join(LASH_SHAPES)}): ICT's own blinks put {own[0]} and {own[1]} "
          f"lash vertices behind the closed lid")
    for label, deltas in predictions.items():
        scores = np.array([part_scores(deltas[CHANNEL_INDEX[c]], eye.truth[head.channels.index(c)], lashes)
                           for c in LASH_SHAPES])
        through = [through_skin(head.vertices, skin_tri, deltas[CHANNEL_INDEX[c]], lashes)
                   for c in ("eyeBlinkLeft", "eyeBlinkRight")]
        print(f"  {label:9s} lashes relative error {scores[:, 0].mean():.3f}, cosine {scores[:, 1].mean():.3f}; "
              f"behind the closed lid {through[0]} (left blink) and {through[1]} (right)")
        if label == "transfer":
            measured["ICT lashes mean relative error"].append(scores[:, 0].mean())
            measured["ICT lash vertices behind the closed lid, share of ICT's own"].append(
                max(t / max(o, 1) for t, o in zip(through, own)))


def variant_blinks(variant, deltas) -> tuple[float, float]:
    """Worst own-eye closure and other-eye change of the two blinks, the lids found from the variant's true blinks."""
    blinks = [CHANNEL_INDEX[c] for c in ("eyeBlinkLeft", "eyeBlinkRight")]
    lids = [lids_from_blink(variant.vertices, variant.truth[k]) for k in blinks]
    own = min(gap_closure(variant.vertices, deltas[k], *lids[eye]) for eye, k in enumerate(blinks))
    other = max(abs(gap_closure(variant.vertices, deltas[k], *lids[1 - eye])) for eye, k in enumerate(blinks))
    return own, other


def run_variants(args, measured: dict[str, list[float]]) -> None:
    """Each variant through `transfer_default_head_shapes` as it is called by default (what Add ARKit Shape Keys
    runs: face landmarks looked for, the fit corrected only where it misses them)."""
    head = load_default_head()
    keep = head.vertex_parts == 0
    tris = head.triangles().astype(np.int64)
    skin_tris = tris[keep[tris].all(axis=1)]
    print(f"\nsource: the default head, {head.num_vertices} vertices ({int(keep.sum())} skin)")
    ours_means, base_means = [], []
    variants = standard_variants(head)
    unknown = set(VARIANT_CLAIMS) - {variant.name for variant in variants}
    if unknown:  # a claim whose variant is gone must not pass by not being measured
        raise SystemExit(f"bench_transfer: the README's variants {sorted(unknown)} are no longer measured")
    for variant in variants:
        began = time.perf_counter()
        result = transfer_default_head_shapes(variant.vertices, variant.triangles)
        seconds = time.perf_counter() - began
        ours = relative_errors(result.deltas, variant.truth, variant.face)
        base = relative_errors(closest_point_copy(result.registration, skin_tris, head.deltas.astype(np.float64),
                                                  variant.vertices), variant.truth, variant.face)
        ours_means.append(ours.mean())
        base_means.append(base.mean())
        print(f"\n{variant.name}: {variant.vertices.shape[0]} vertices ({int(variant.face.sum())} face), "
              f"{seconds:.2f} s (registration {result.registration.seconds:.2f} s)")
        for note in result.notes:
            print(f"  note: {note}")
        print(f"  transfer  {describe(ours)}")
        print(f"  baseline  {describe(base)}")
        own, other = variant_blinks(variant, result.deltas.astype(np.float64))
        print(f"  transfer  blink own eye {own:+.0%}, other eye {other:.0%}")
        measured["blink closes its own eye"].append(own)
        measured["blink leaves the other eye"].append(other)
        measured["variant mean error, worst variant"].append(ours.mean())
        if variant.name.startswith("all:"):
            measured["variants combined mean error"].append(ours.mean())
        elif variant.name in VARIANT_CLAIMS:
            claim = VARIANT_CLAIMS[variant.name]
            measured[f"{variant.name}: mean error (README {claim:.1%} + 0.5 points)"].append(ours.mean())
    print("\nper variant (transfer / baseline):")
    for variant, ours, base in zip(variants, ours_means, base_means):
        print(f"  {variant.name:32s} {ours:6.1%} / {base:6.1%}")
    print(f"over variants: transfer {np.mean(ours_means):.1%}, baseline {np.mean(base_means):.1%}, "
          f"ratio {np.mean(ours_means) / np.mean(base_means):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="ict, canonical or variants (default: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, torch {torch.get_num_threads()} "
          f"threads, python {sys.version.split()[0]}")
    measured: dict[str, list[float]] = {key: [] for key in GOALS}
    run_heads(args, measured)
    if "variants" in args.only or not args.only:
        run_variants(args, measured)
    print(f"\ngoals (load average now {os.getloadavg()[0]:.1f}):")
    missed = 0
    for key, (sense, goal) in GOALS.items():
        if not measured[key]:
            continue
        worst = {"<=": max, "<": max, ">=": min}[sense](measured[key])
        ok = {"<=": worst <= goal, "<": worst < goal, ">=": worst >= goal}[sense]
        missed += not ok
        print(f"  {'ok  ' if ok else 'MISS'} {key}: {worst:.3f} (goal {sense} {goal})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
