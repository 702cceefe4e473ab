"""The `i2fet` command line. User mistakes end in one sentence on stderr and exit status 2, never a traceback.

Commands import what loads numpy or torch (runtime, heads, photo, rigs, training, evaluation) when they run, so
`i2fet --help` stays quick (benchmarks/bench_cli.py holds it to 0.3 s).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence


from . import __version__
from .bake_options import add_bake_options, bake_outputs, check_bake_options, forward
from .device import DEVICE_CHOICES, select_device
from .encoders import ENCODER_NAMES
from .errors import I2FETError, InputError
from .generators.registry import DEFAULT_MODEL, MODEL_NAMES
from .limits import FPS_RANGE, SAVE_FORMATS

PREVIEW_SUFFIX = ".png"
# Encoders evaluate can read: OpenCLIP's weights are a user's own checkpoint (--encoder-path), which evaluate does not
# take, so it is left out rather than offered and failing.
EVALUATED_ENCODERS = tuple(name for name in ENCODER_NAMES if name != "openclip")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is reported like every other user error: one line, exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise InputError(f"{message[0].upper()}{message[1:]} (see '{self.prog} --help').")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="i2fet", description="Instruction-driven facial expression animation (ARKit 52).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser("generate", help="turn an instruction into an animation file")
    gen.add_argument("instruction", help='what the face should do, e.g. "slowly smile, then look shocked"')
    gen.add_argument("-o", "--output", required=True, help="animation file: .json, .npz or .csv (Live Link Face)")
    gen.add_argument("--preview", help="also write a contact sheet of frames rendered on the default head (.png)")
    gen.add_argument("--fps", type=int, default=30,
                     help=f"frames per second, {FPS_RANGE[0]}-{FPS_RANGE[1]} (default 30)")
    gen.add_argument("--seed", type=int, default=0, help="random seed for models that sample (default 0)")
    gen.add_argument("--duration", type=float, help="stretch the whole animation to this many seconds (0-600]")
    gen.add_argument("--intensity", type=float, default=1.0, help="scale every expression (0-2, default 1)")
    gen.add_argument("--model", default=DEFAULT_MODEL, choices=MODEL_NAMES, help="generator to use")
    gen.add_argument("--start-image", help="start from the expression of the face in this photo (PNG, JPEG, ...)")
    gen.add_argument("--neutral-image", help="a photo of the same person's face at rest, whose reading is removed "
                                             "from --start-image's")
    gen.add_argument("--start-animation", help="start from the last frame of this saved animation (.json or .npz, "
                                               "e.g. from i2fet track)")
    gen.add_argument("--life", action=argparse.BooleanOptionalAction, default=False,
                     help="add natural idle motion: blinks and small gaze shifts (default off, for reproducible "
                          "output)")
    gen.add_argument("--flame-model", help="your FLAME model file, to also write the animation as FLAME parameters")
    gen.add_argument("--flame-output", help="FLAME parameter sequence to write (.npz: expression, jaw_pose, eye_pose)")
    _add_runtime_options(gen)

    bake = commands.add_parser("bake", help="bake an instruction onto the default head (or a .blend): "
                                            ".blend + .fbx + preview .png (needs the bpy module)")
    bake.add_argument("instruction", nargs="?", help="what the face should do")
    bake.add_argument("-o", "--outdir", help="output folder; files are named after the instruction")
    bake.add_argument("--jobs", help="instead: bake every row of a .csv/.json jobs file (resumable; see README)")
    bake.add_argument("--workers", type=int, default=1, help="with --jobs: worker processes (default 1)")
    bake.add_argument("--rows", help="with --jobs: only rows A-B or A+N (one farm task's chunk)")
    bake.add_argument("--force", action="store_true", help="replace outputs that already exist (with --jobs: also "
                                                          "bake rows the manifest says are done)")
    add_bake_options(bake)

    train = commands.add_parser("train", help="train the I2FET model from a config file (resumable)")
    train.add_argument("--config", help="TOML config (default: configs/i2fet.toml)")
    train.add_argument("--out", help="folder for the weights and model card (default: weights/)")
    train.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    train.add_argument("--steps", type=int, help="override the config's number of steps")
    train.add_argument("--work-dir", help="checkpoint folder (default: in the cache, keyed by config and seed)")
    train.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    train.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="torch device")

    evaluate = commands.add_parser("evaluate", help="score models side by side on held-out concepts and phrasings")
    evaluate.add_argument("--models", nargs="+", default=["i2fet", "baseline"], choices=MODEL_NAMES,
                          help="models to compare (default: i2fet baseline)")
    evaluate.add_argument("--n", type=int, default=128, help="items per held-out split (default 128)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed for item sampling and generation (default 0)")
    evaluate.add_argument("--no-judge", action="store_true", help="skip the FER emotion judge (needs eval extras)")
    evaluate.add_argument("--json", help="also write the full report as JSON to this file")
    evaluate.add_argument("--device", default="cpu", choices=DEVICE_CHOICES, help="torch device")
    evaluate.add_argument("--encoder", default="minilm", choices=EVALUATED_ENCODERS,
                          help="text encoder of both models (default minilm; it must be the one --weights was trained with)")
    evaluate.add_argument("--weights", help="the learned model's weights file (default: the shipped one)")

    flame = commands.add_parser("flame", help="FLAME: report the ARKit<->FLAME map of your model, convert sequences")
    flame.add_argument("model", help="your FLAME model file (.pkl from FLAME 2020/2023/2023 Open, or .npz)")
    flame.add_argument("--to-arkit", metavar="SEQUENCE", help="convert a FLAME parameter sequence (.npz/.pkl, as "
                                                              "DECA, EMOCA, SMIRK write them) to an ARKit animation")
    flame.add_argument("-o", "--output", help="the ARKit animation file for --to-arkit: .json, .npz or .csv")
    flame.add_argument("--fps", type=int, help="frame rate when the sequence does not give one")
    flame.add_argument("--json", action="store_true", help="print the map report as JSON")

    track = commands.add_parser("track", help="turn a face video into keyframes: every frame read, smoothed, at the "
                                               "video's frame rate")
    track.add_argument("video", help="the video (MP4, AVI, MOV, ...), one face seen from the front")
    track.add_argument("-o", "--output", required=True, help="animation file: .json, .npz or .csv")
    track.add_argument("--neutral-image", help="a photo of the same person's face at rest, whose reading is removed")
    shapes = commands.add_parser("shapes", help="give a head mesh (.obj) the 52 ARKit shapes, transferred from the "
                                                 "default head, and report the checks an artist would make")
    shapes.add_argument("mesh", help="the head mesh: a Wavefront .obj (eyeballs, teeth and lashes may be in it)")
    shapes.add_argument("-o", "--output", required=True, help=".npz with the mesh's vertices and triangles and the 52 "
                                                               "shapes' offsets (deltas, in ARKit order: channels)")
    info = commands.add_parser("info", help="show versions, device, encoder and model files")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    _add_runtime_options(info)
    return parser


def _add_runtime_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="torch device (default auto)")
    command.add_argument("--encoder", default="minilm", choices=ENCODER_NAMES, help="text encoder (default minilm)")
    command.add_argument("--encoder-path", help="local encoder weights: a MiniLM model folder, or an OpenCLIP "
                                                "checkpoint (file or folder) for --encoder openclip")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        command = {"generate": _generate, "bake": _bake, "train": _train, "evaluate": _evaluate,
                   "flame": _flame, "track": _track, "shapes": _shapes, "info": _info}[args.command]
        # generate is one short run (load, generate, write): it loads without the collector
        with _collector_paused() if command is _generate else contextlib.nullcontext():
            return command(args)
    except I2FETError as exc:
        print(f"i2fet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("i2fet: interrupted; nothing was written.", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _collector_paused():
    """Run without Python's cyclic garbage collector: while torch imports, the collector keeps walking the hundreds of
    thousands of objects it has just made, none of them garbage (about 10% of a cold `i2fet generate`,
    `benchmarks/bench_cli.py`). For a short command only; what it made is frozen (skipped by later collections)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _generate(args: argparse.Namespace) -> int:
    from .animation import check_output_suffix
    from .heads.preview import write_animation_preview
    from .instructions import validate_instruction
    from .paths import StagedOutputs, check_writable_folder
    from .runtime import Runtime, read_start_animation
    output = Path(args.output)
    check_output_suffix(output, SAVE_FORMATS, "animation")
    check_writable_folder(output)
    preview = Path(args.preview) if args.preview else None
    if preview is not None:
        check_output_suffix(preview, (PREVIEW_SUFFIX,), "preview")
        check_writable_folder(preview)
    instruction = validate_instruction(args.instruction)
    if args.start_animation is not None and args.start_image is not None:
        raise InputError("Give --start-image or --start-animation, not both.")
    _check_start_image(args)
    # read before the model loads, so that a bad file fails fast
    start = read_start_animation(args.start_animation) if args.start_animation is not None else None
    flame_output, fmap = _flame_output(args)
    runtime = Runtime.load(model=args.model, device=args.device, encoder=args.encoder, encoder_path=args.encoder_path)
    anim = runtime.generate(instruction, fps=args.fps, seed=args.seed, duration=args.duration, intensity=args.intensity,
                            start=start, start_image=args.start_image, neutral_image=args.neutral_image,
                            life=args.life)
    with StagedOutputs() as staged:
        anim.save(staged.stage(output))
        if preview is not None:
            write_animation_preview(anim, staged.stage(preview))
        if flame_output is not None:
            from .rigs.flame_convert import animation_to_flame
            from .rigs.flame_sequence import save_flame_sequence

            save_flame_sequence(staged.stage(flame_output), animation_to_flame(anim, fmap))
    for warning in anim.warnings:
        print(f"i2fet: warning: {warning}", file=sys.stderr)
    summary = ", then ".join(f"{s['label']} ({s['start_frame']}-{s['end_frame']})" for s in anim.segments)
    print(f"Wrote {output} ({anim.num_frames} frames at {anim.fps} fps, {anim.duration_s:.2f} s): {summary}.")
    if preview is not None:
        print(f"Wrote {preview}.")
    if flame_output is not None:
        print(f"Wrote {flame_output} (FLAME parameters; {fmap.summary()})")
    return 0


def _flame_output(args: argparse.Namespace):
    """Check --flame-model/--flame-output together, before any model loads; derive (or read) the map."""
    from .paths import check_writable_folder
    if (args.flame_model is None) != (args.flame_output is None):
        raise InputError("Give --flame-model and --flame-output together.")
    if args.flame_output is None:
        return None, None
    output = Path(args.flame_output)
    if output.suffix.lower() != ".npz":
        raise InputError(f"The FLAME output must be an .npz file; {output.name} is not.")
    if output.resolve() == Path(args.output).resolve():
        raise InputError("The animation and the FLAME parameters need two different files.")
    check_writable_folder(output)
    from .rigs import load_flame
    from .rigs.flame_map import flame_map_for

    return output, flame_map_for(load_flame(args.flame_model))


def _flame(args: argparse.Namespace) -> int:
    from .animation import check_output_suffix
    from .expression_space import ARKIT_CHANNELS
    from .paths import StagedOutputs, check_writable_folder
    from .rigs import load_flame
    from .rigs.flame_map import flame_map_for, map_cache_path

    if (args.to_arkit is None) != (args.output is None):
        raise InputError("Give --to-arkit and --output together.")
    if args.output is not None:
        check_output_suffix(Path(args.output), SAVE_FORMATS, "animation")
        check_writable_folder(Path(args.output))
    sequence = None
    if args.to_arkit is not None:
        from .rigs.flame_sequence import load_flame_sequence

        sequence = load_flame_sequence(args.to_arkit)
    model = load_flame(args.model)
    if sequence is not None and sequence.num_expression > model.num_expression:
        raise InputError(f"The sequence has {sequence.num_expression} expression components but the model only "
                         f"{model.num_expression}.")
    fmap = flame_map_for(model)
    if sequence is not None:
        from .rigs.flame_convert import flame_to_animation

        if args.fps is not None and sequence.fps is not None and abs(args.fps - sequence.fps) > 1e-6:
            print(f"i2fet: warning: the sequence says {sequence.fps:g} fps; --fps {args.fps} was not used.",
                  file=sys.stderr)
        anim = flame_to_animation(sequence, fmap, fps=args.fps, name=Path(args.to_arkit).stem)
        with StagedOutputs() as staged:
            anim.save(staged.stage(Path(args.output)))
        for note in sequence.notes:
            print(f"i2fet: warning: {note}", file=sys.stderr)
        print(f"Wrote {args.output} ({anim.num_frames} frames at {anim.fps} fps).")
        return 0
    report = {"file": str(args.model), "edition": model.edition, "licence": model.licence_line,
              "vertices": model.num_vertices, "expression_components": model.num_expression,
              "map_cache": str(map_cache_path(model)), "derived_seconds": round(fmap.seconds, 2),
              "from_cache": fmap.from_cache, "roundtrip_weight_error": fmap.roundtrip_weight_error,
              "roundtrip_vertex_error": fmap.roundtrip_vertex_error,
              "residuals": {c: round(float(r), 4) for c, r in zip(ARKIT_CHANNELS, fmap.residuals)}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{model.edition} model, {model.num_vertices} vertices, {model.num_expression} expression components.")
    print(model.licence_line)
    print(fmap.summary())
    print("Fit residual per ARKit shape (share of the shape FLAME cannot make), worst first:")
    for name, value in sorted(report["residuals"].items(), key=lambda item: -item[1]):
        print(f"  {name:22s} {value:6.1%}")
    return 0


# Seconds an interrupted baker gets to remove what it staged before it is killed.
BAKE_STOP_GRACE_S = 10.0
# Lines of Blender's own that name the baker's temporaries ("Saved copy as .x.1234abcd.tmp.blend", the FBX
# exporter's start and finish): noise for the user, whose paths the baker's own lines give.
_BLENDER_NOISE = re.compile(r"\.[a-z0-9_]{8}\.tmp\.(blend|fbx|png|json|npz|csv)\b|^export finished in [0-9.]+ sec\.$|^$")


def _bake(args: argparse.Namespace) -> int:
    """Run the Blender batch baker in its own process, so that this package never imports bpy."""
    from .instructions import validate_instruction
    from .paths import check_new_output, check_writable_folder
    if args.jobs:
        if args.instruction is not None or args.outdir:
            raise InputError("Give either an instruction with -o OUTDIR or --jobs FILE, not both.")
        farm = ["--jobs", args.jobs, "--workers", str(args.workers), *(["--rows", args.rows] if args.rows else []),
                *(["--force"] if args.force else [])]
        _check_baker(args)
        return _run_baker([sys.executable, "-m", "i2fet_blender.farm", *farm, *forward(args)])
    if args.instruction is None or not args.outdir:
        raise InputError("Give an instruction and -o OUTDIR, or --jobs FILE.")
    if args.rows or args.workers != 1:
        raise InputError("--workers and --rows go with --jobs.")
    validate_instruction(args.instruction)
    _check_baker(args)
    for path in bake_outputs(args.instruction, args.outdir).values():
        check_writable_folder(path, create=True)
        check_new_output(path, args.force)
    command = [sys.executable, "-m", "i2fet_blender.batch", "--bake", args.instruction, "-o", args.outdir,
               *forward(args), *(["--force"] if args.force else [])]
    return _run_baker(command)


def _check_baker(args: argparse.Namespace) -> None:
    """Check the shared options and photos here, before Blender starts."""
    check_bake_options(vars(args))
    _check_start_image(args, find_face=True)
    if importlib.util.find_spec("bpy") is None:
        raise InputError("Baking needs Blender's Python module: run 'pip install bpy==4.5.15' (Python 3.11) or use "
                         "Blender's own batch mode (blender --background --python i2fet_blender/batch.py -- ...).")


def _run_baker(command: list[str]) -> int:
    """Run the baker, passing SIGINT/SIGTERM on to it (it removes what it staged and exits), killing it if it has not
    stopped `BAKE_STOP_GRACE_S` later or when this process leaves early; its output without Blender's noise."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    pumps = [threading.Thread(target=_copy_lines, args=(pipe, stream), daemon=True)
             for pipe, stream in ((child.stdout, sys.stdout), (child.stderr, sys.stderr))]
    for pump in pumps:
        pump.start()
    stop_by: list[float] = []

    def pass_on(signum, _frame):
        stop_by.append(time.monotonic() + BAKE_STOP_GRACE_S)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while child.poll() is None:
            if stop_by and time.monotonic() > stop_by[0]:
                child.kill()
            time.sleep(0.05)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:
            child.kill()
        child.wait()
        for pump in pumps:
            pump.join(timeout=5)
    if stop_by:
        raise KeyboardInterrupt
    return child.returncode


def _copy_lines(pipe, stream) -> None:
    for line in pipe:
        if not _BLENDER_NOISE.search(line.rstrip("\n")):
            stream.write(line)
            stream.flush()
    pipe.close()


def _track(args: argparse.Namespace) -> int:
    """Video -> animation file; progress on stdout, frames without a face reported on stderr."""
    from .animation import SAVE_FORMATS, check_output_suffix
    from .paths import StagedOutputs, check_writable_folder
    from .photo.video import track_video

    output = Path(args.output)
    check_output_suffix(output, SAVE_FORMATS, "animation")
    check_writable_folder(output)
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth != shown[0] or done == total:
            shown[0] = tenth
            print(f"read {done}/{total} frames", flush=True)

    result = track_video(args.video, neutral_image=args.neutral_image, progress=progress)
    anim = result.animation
    with StagedOutputs() as staged:
        anim.save(staged.stage(output))
    for warning in result.warnings:
        print(f"i2fet: warning: {warning}", file=sys.stderr)
    print(f"Wrote {output} ({anim.num_frames} frames at {anim.fps} fps, {anim.duration_s:.2f} s).")
    return 0


def _shapes(args: argparse.Namespace) -> int:
    """OBJ head -> npz of the 52 transferred shapes; the checks on stdout, their warnings on stderr."""
    import numpy as np

    from .expression_space import ARKIT_CHANNELS
    from .paths import atomic_output, check_writable_folder
    from .rigs.obj_mesh import read_obj
    from .rigs.shape_transfer import transfer_default_head_shapes

    output = Path(args.output)
    if output.suffix.lower() != ".npz":
        raise InputError(f"{output} must end in .npz (the shapes are written as numpy arrays).")
    check_writable_folder(output)
    vertices, triangles = read_obj(args.mesh)
    began = time.perf_counter()
    transfer = transfer_default_head_shapes(vertices, triangles)
    seconds = time.perf_counter() - began
    with atomic_output(output) as handle:
        np.savez_compressed(handle, vertices=vertices.astype(np.float32), triangles=triangles.astype(np.int32),
                            deltas=transfer.deltas.astype(np.float32), channels=np.array(ARKIT_CHANNELS))
    for note in transfer.notes:
        print(f"i2fet: note: {note}", file=sys.stderr)
    warnings = [] if transfer.checks is None else transfer.checks.warnings
    for warning in warnings:
        print(f"i2fet: warning: {warning}", file=sys.stderr)
    checked = "" if transfer.checks is None else " " + transfer.checks.summary()
    print(f"Wrote {output} ({len(ARKIT_CHANNELS)} shapes on {vertices.shape[0]} vertices, "
          f"{seconds:.1f} s).{checked}")
    return 0


def _check_start_image(args: argparse.Namespace, find_face: bool = False) -> None:
    """Refuse an unreadable, non-image, too large or too small start or neutral image before any model is loaded;
    with `find_face` (bake, whose Blender process would otherwise be the first to look) also one without a face."""
    from .photo import read_start_expression
    from .photo.image import load_image
    if args.neutral_image is not None and args.start_image is None:
        raise InputError("--neutral-image is only used with --start-image; give both or neither.")
    if args.start_image is None:
        return
    if find_face:
        read_start_expression(args.start_image, neutral_image=args.neutral_image)
        return
    load_image(args.start_image)
    if args.neutral_image is not None:
        load_image(args.neutral_image, what="neutral image")


def _train(args: argparse.Namespace) -> int:
    from .training.train import DEFAULT_CONFIG, DEFAULT_OUT_DIR, train

    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps must be at least 1, not {args.steps}.")
    summary = train(config_path=args.config or DEFAULT_CONFIG, out_dir=args.out or DEFAULT_OUT_DIR, seed=args.seed,
                    resume=not args.no_resume, device=args.device, work_dir=args.work_dir, steps=args.steps)
    print(f"Wrote {summary['weights']} (sha256 {summary['sha256'][:16]}..., {summary['bytes'] / 1e6:.2f} MB) "
          f"after {summary['steps']} steps in {summary['wall_s']:.0f} s.")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .animation import check_output_suffix
    from .paths import atomic_output, check_writable_folder
    from .evaluation.report import load_model, run_evaluation

    if args.n < 1:
        raise InputError(f"--n must be at least 1, not {args.n}.")
    if args.json:
        check_output_suffix(Path(args.json), (".json",), "report")
        check_writable_folder(args.json)
    if args.weights is not None:
        if "i2fet" not in args.models:
            raise InputError("--weights is the learned model's file; add i2fet to --models or leave --weights out.")
        if Path(args.weights).is_dir():
            raise InputError(f"The weights file {args.weights} is a folder, not a weights file.")
        if not Path(args.weights).is_file():
            raise InputError(f"The weights file {args.weights} does not exist.")
    if "i2fet" in args.models and (args.weights is not None or args.encoder != "minilm"):
        load_model("i2fet", args.device, args.encoder, args.weights)  # the user's choice fails here, in one sentence
    report = run_evaluation(models=tuple(args.models), n=args.n, seed=args.seed, device=args.device,
                            judge=not args.no_judge, encoder=args.encoder, weights=args.weights)
    print(report.to_table())
    if args.json:
        with atomic_output(args.json) as handle:
            handle.write((json.dumps(report.to_dict(), indent=1) + "\n").encode("utf-8"))
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy

    from .heads.head import load_default_head
    from .paths import cache_dir
    import torch  # see the module docstring

    from .encoders import load_text_encoder

    encoder = load_text_encoder(args.encoder, path=args.encoder_path, device=str(select_device(args.device)))
    head = load_default_head()
    report = {
        "i2fet": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(select_device(args.device)),
        "cuda_available": torch.cuda.is_available(),
        "text_encoder": {"name": encoder.name, "dim": encoder.dim, "sha256": encoder.checksum},
        "default_head": {"vertices": int(head.vertices.shape[0]), "faces": int(head.face_vertex_counts.shape[0])},
        "models": list(MODEL_NAMES),
        "cache_dir": str(cache_dir()),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>14}: {value}")
    return 0
