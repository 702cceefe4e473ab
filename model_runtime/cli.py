"""The `i2fet` command line. User mistakes end in one sentence on stderr and exit status 2, never a traceback.

Only what the parser needs (names and ranges) is imported at the top: numpy, torch and every
module that loads them are imported by the command that runs, so `i2fet --help` and a usage error stay quick
(benchmarks/bench_cli.py holds them to 0.3 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .bake_options import add_bake_options, check_bake_options, forward
from .device import DEVICE_CHOICES, select_device
from .encoders import ENCODER_NAMES
from .errors import I2FETError, InputError
from .generators.registry import DEFAULT_MODEL, MODEL_NAMES
from .limits import FPS_RANGE

PREVIEW_SUFFIX = ".png"


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
    gen.add_argument("--flame-model", help="your FLAME model file, to also write the animation as FLAME parameters")
    gen.add_argument("--flame-output", help="FLAME parameter sequence to write (.npz: expression, jaw_pose, eye_pose)")
    _add_runtime_options(gen)

    bake = commands.add_parser("bake", help="bake an instruction onto the default head (or a .blend): "
                                            ".blend + .fbx + preview .png (needs the bpy module)")
    bake.add_argument("instruction", help="what the face should do")
    bake.add_argument("-o", "--outdir", required=True, help="output folder; files are named after the instruction")
    add_bake_options(bake)

    train = commands.add_parser("train", help="train the I2FET model from a config file (resumable)")
    train.add_argument("--config", help="TOML config (default: configs/i2fet.toml)")
    train.add_argument("--out", help="folder for the weights and model card (default: weights/)")
    train.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    train.add_argument("--steps", type=int, help="override the config's number of steps")
    train.add_argument("--work-dir", help="checkpoint folder (default: in the cache, keyed by config and seed)")
    train.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    train.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="torch device")

    photo = commands.add_parser("train-photo", help="train the photo regressor that reads a start expression from a "
                                                    "photo (renders the default head; minutes)")
    photo.add_argument("--out", help="the .safetensors to write, a .json beside it (default: weights/)")
    photo.add_argument("--faces", type=int, help="training renders (default 5000)")
    photo.add_argument("--seed", type=int, help="data and training seed (default: the shipped file's)")
    photo.add_argument("--workers", type=int, default=2, help="processes rendering and detecting (default 2)")

    evaluate = commands.add_parser("evaluate", help="score models side by side on held-out concepts and phrasings")
    evaluate.add_argument("--models", nargs="+", default=["i2fet", "baseline"], choices=MODEL_NAMES,
                          help="models to compare (default: i2fet baseline)")
    evaluate.add_argument("--n", type=int, default=128, help="items per held-out split (default 128)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed for item sampling and generation (default 0)")
    evaluate.add_argument("--no-judge", action="store_true", help="skip the FER emotion judge (needs eval extras)")
    evaluate.add_argument("--json", help="also write the full report as JSON to this file")
    evaluate.add_argument("--device", default="cpu", choices=DEVICE_CHOICES, help="torch device")

    flame = commands.add_parser("flame", help="FLAME: report the ARKit<->FLAME map of your model, convert sequences")
    flame.add_argument("model", help="your FLAME model file (.pkl from FLAME 2020/2023/2023 Open, or .npz)")
    flame.add_argument("--to-arkit", metavar="SEQUENCE", help="convert a FLAME parameter sequence (.npz/.pkl, as "
                                                              "DECA, EMOCA, SMIRK write them) to an ARKit animation")
    flame.add_argument("-o", "--output", help="the ARKit animation file for --to-arkit: .json, .npz or .csv")
    flame.add_argument("--fps", type=int, help="frame rate when the sequence does not give one")
    flame.add_argument("--json", action="store_true", help="print the map report as JSON")

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
        return {"generate": _generate, "bake": _bake, "train": _train, "evaluate": _evaluate,
                "flame": _flame, "train-photo": _train_photo, "info": _info}[args.command](args)
    except I2FETError as exc:
        print(f"i2fet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("i2fet: interrupted; nothing was written.", file=sys.stderr)
        return 130


def _generate(args: argparse.Namespace) -> int:
    from .animation import SAVE_FORMATS, check_output_suffix
    from .heads.preview import write_animation_preview
    from .paths import StagedOutputs, check_writable_folder
    from .instructions import validate_instruction
    from .runtime import Runtime

    output = Path(args.output)
    check_output_suffix(output, SAVE_FORMATS, "animation")
    check_writable_folder(output)
    preview = Path(args.preview) if args.preview else None
    if preview is not None:
        check_output_suffix(preview, (PREVIEW_SUFFIX,), "preview")
        check_writable_folder(preview)
    instruction = validate_instruction(args.instruction)
    if args.start_image is not None:
        _check_start_image(args.start_image)
    flame_output, fmap = _flame_output(args)
    runtime = Runtime.load(model=args.model, device=args.device, encoder=args.encoder, encoder_path=args.encoder_path)
    anim = runtime.generate(instruction, fps=args.fps, seed=args.seed, duration=args.duration,
                            intensity=args.intensity, start_image=args.start_image)
    with StagedOutputs() as staged:
        anim.save(staged.stage(output))
        if preview is not None:
            from .heads.preview import write_animation_preview  # the renderer: only for a preview

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
    if (args.flame_model is None) != (args.flame_output is None):
        raise InputError("Give --flame-model and --flame-output together.")
    if args.flame_output is None:
        return None, None
    output = Path(args.flame_output)
    if output.suffix.lower() != ".npz":
        raise InputError(f"The FLAME output must be an .npz file; {output.name} is not.")
    if output.resolve() == Path(args.output).resolve():
        raise InputError("The animation and the FLAME parameters need two different files.")
    from .paths import check_writable_folder
    from .rigs import load_flame
    from .rigs.flame_map import flame_map_for

    check_writable_folder(output)
    return output, flame_map_for(load_flame(args.flame_model))


def _train_photo(args: argparse.Namespace) -> int:
    from .training import photo as train

    argv = ["--workers", str(args.workers)]
    for flag, value in (("--out", args.out), ("--faces", args.faces), ("--seed", args.seed)):
        if value is not None:
            argv += [flag, str(value)]
    if args.faces is not None and args.faces < 100:
        raise InputError(f"Train the photo regressor on at least 100 faces; {args.faces} were asked for.")
    if args.out is not None:  # found out before minutes of rendering, not after
        if Path(args.out).suffix != ".safetensors":
            raise InputError(f"The photo regressor is written as .safetensors (a .json goes beside it); "
                             f"{Path(args.out).name} is not.")
        from .paths import check_writable_folder

        check_writable_folder(Path(args.out))
    train.main(argv)
    return 0


def _flame(args: argparse.Namespace) -> int:
    from .animation import SAVE_FORMATS, check_output_suffix
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


def _bake(args: argparse.Namespace) -> int:
    """Run the Blender batch baker in its own process, so that this package never imports bpy."""
    from .instructions import validate_instruction

    validate_instruction(args.instruction)
    check_bake_options(vars(args))
    if args.start_image is not None:
        _check_start_image(args.start_image, find_face=True)
    if importlib.util.find_spec("bpy") is None:
        raise InputError("Baking needs Blender's Python module: run 'pip install bpy==4.5.15' (Python 3.11) or use "
                         "Blender's own batch mode (blender --background --python i2fet_blender/batch.py -- ...).")
    command = [sys.executable, "-m", "i2fet_blender.batch", "--bake", args.instruction, "-o", args.outdir,
               *forward(args)]
    return subprocess.run(command).returncode


def _check_start_image(path: str, find_face: bool = False) -> None:
    """Refuse an unreadable, non-image, too large or too small start image before any model is loaded; with
    `find_face` (bake, whose Blender process would otherwise be the first to look) also one without a face."""
    if find_face:
        from .photo import read_start_expression

        read_start_expression(path)
        return
    from .photo.image import load_image

    load_image(path)


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
    from .evaluation.report import run_evaluation
    from .paths import atomic_output, check_writable_folder

    if args.n < 1:
        raise InputError(f"--n must be at least 1, not {args.n}.")
    if args.json:
        check_output_suffix(Path(args.json), (".json",), "report")
        check_writable_folder(args.json)
    report = run_evaluation(models=tuple(args.models), n=args.n, seed=args.seed, device=args.device,
                            judge=not args.no_judge)
    print(report.to_table())
    if args.json:
        with atomic_output(args.json) as handle:
            handle.write((json.dumps(report.to_dict(), indent=1) + "\n").encode("utf-8"))
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy
    import torch  # see the module docstring

    from .encoders import load_text_encoder
    from .heads.head import load_default_head
    from .paths import cache_dir

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
