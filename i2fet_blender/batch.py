"""Batch baking without the UI: synchronous, no timers, progress on stdout, non-zero exit naming each failed job.

Run as any of:
    python -m i2fet_blender.batch --instruction TEXT [--blend IN.blend --object NAME] [--start-frame N]
                                  [--out OUT.blend] [--fbx OUT.fbx] [--preview OUT.png] [--animation OUT.json]
                                  [--start-image PHOTO [--neutral-image PHOTO]]
    python -m i2fet_blender.batch --jobs JOBS.json|JOBS.csv          (one job per row; same keys as the options)
    python -m i2fet_blender.batch --bake TEXT -o OUTDIR [--blend IN.blend --object NAME]
                                  (writes OUTDIR/<slug>.blend, .fbx and .png; what `i2fet bake` runs)
    blender --background --python i2fet_blender/batch.py -- ARGS     (the same ARGS after `--`)

Shared options (`model_runtime.bake_options`, the same as `i2fet bake`'s): --fps N (default: the .blend's scene rate,
30 for the default head), --seed N, --duration S, --intensity X, --preset UNITY|UNREAL|BLENDER, --device auto|cpu|cuda,
--start-image PHOTO (start from the expression of the face in a photo; its warnings go to stderr),
--neutral-image PHOTO (the same person at rest, whose reading is removed), --flame-model FILE
(the FLAME model of a face that is a FLAME head; default I2FET_FLAME_MODEL); and --mirror, --reduce-keys.
Any face `targets.face_target` accepts can be baked: an ARKit face, or a FLAME head through the ARKit<->FLAME map.
Every job's outputs appear together or not at all (`model_runtime.paths.StagedOutputs`), also when the run is
interrupted (SIGINT, SIGTERM): no temporaries and no new empty folder are left. Outputs are checked before any job
runs: two that name one file, a name whose extension is not the format written, an existing file (unless --force)
or anything but a regular file are refused.
Exit status: 0 all jobs done, 1 some job failed (each named on stderr), 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `blender --python i2fet_blender/batch.py -- ...`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "i2fet_blender"  # noqa: A001 - lets the relative imports below work

import bpy  # noqa: E402

from model_runtime.bake_options import (DEFAULT_PRESET, add_bake_options, bake_outputs,  # noqa: E402
                                       check_bake_options)
from model_runtime.errors import I2FETError, InputError  # noqa: E402
from model_runtime.generators.registry import DEFAULT_MODEL  # noqa: E402
from model_runtime.paths import (StagedOutputs, check_distinct_outputs, check_new_output,  # noqa: E402
                                 check_writable_folder, interrupts_deferred, interrupts_raise, refuse_special_file)
from model_runtime.heads.preview import write_animation_preview  # noqa: E402

from . import targets  # noqa: E402
from .head_object import add_default_head  # noqa: E402
from .ops_base import generation_fps, scene_fps  # noqa: E402
from .runtime_cache import LoadSettings, get_runtime  # noqa: E402
from .utils.process_exit import exit_after_bpy  # noqa: E402

# How a batch run names the FLAME model file, for the sentence asking for it.
FLAME_FILE_SOURCES = ("This face is a FLAME head: give your FLAME model file with --flame-model, a job's flame_model "
                      "field or I2FET_FLAME_MODEL")


@dataclass
class Job:
    instruction: str
    blend: str | None = None
    object: str | None = None
    start_frame: int = 1
    out: str | None = None
    fbx: str | None = None
    preview: str | None = None
    animation: str | None = None
    fps: int | None = None
    seed: int = 0
    duration: float | None = None
    intensity: float = 1.0
    mirror: bool = False
    reduce_keys: bool = False
    preset: str = DEFAULT_PRESET
    start_image: str | None = None
    flame_model: str | None = None
    neutral_image: str | None = None
    life: bool = False
    name: str = field(default="")

    def outputs(self) -> list[str]:
        return [p for p in (self.out, self.fbx, self.preview, self.animation) if p]

    def named_outputs(self) -> list[tuple[str, str]]:
        return [(f"{self.name} {key}", path) for key, path in
                (("out", self.out), ("fbx", self.fbx), ("preview", self.preview), ("animation", self.animation))
                if path]


def check_outputs(jobs: list[Job], force: bool = False) -> None:
    """Before any job runs: no two outputs name one file, and none would replace a file (without `force`) or
    anything but a regular file."""
    check_distinct_outputs([named for job in jobs for named in job.named_outputs()])
    for job in jobs:
        for path in job.outputs():
            check_new_output(path, force)


def _bool(value) -> bool:
    if isinstance(value, (bool, int)):
        return bool(value)
    if not isinstance(value, str):
        raise TypeError(value)
    return value.strip().lower() in ("1", "true", "yes", "y", "on")


def _whole(value) -> int:
    """A whole number from a CSV string or a JSON number; 29.97 or true is a mistake, not 29 or 1."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


_CASTS = {"start_frame": _whole, "fps": _whole, "seed": _whole, "duration": float, "intensity": float,
          "mirror": _bool, "reduce_keys": _bool, "life": _bool}


def read_jobs(path: str | os.PathLike, defaults: dict) -> list[Job]:
    """Rows of a .json (a list of objects) or .csv (a header row) file; relative paths are taken from its folder."""
    source = Path(path)
    refuse_special_file(source, "jobs file", "a .csv or .json file")
    try:
        text = source.read_text(encoding="utf-8-sig")  # a byte-order mark (spreadsheet CSVs) is not part of a field
    except UnicodeDecodeError:
        raise InputError(f"The jobs file {source} is not UTF-8 text.") from None
    except OSError as exc:
        raise InputError(f"Cannot read the jobs file {source}: {exc.strerror or exc}.") from None
    if source.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"The jobs file {source} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
        except RecursionError:
            raise InputError(f"The jobs file {source} is nested too deeply to be a jobs file.") from None
        if isinstance(rows, dict):
            rows = rows.get("jobs", [])
    elif source.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        raise InputError(f"The jobs file must be .json or .csv, not {source.suffix or 'without extension'}.")
    if not isinstance(rows, list) or not rows:
        raise InputError(f"The jobs file {source} holds no jobs.")
    known = {f.name for f in fields(Job)}
    jobs = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InputError(f"Job {i} of {source} is not a set of named values.")
        values = dict(defaults)
        if None in row:  # a CSV row with more values than the header has fields
            extra = [v for v in row.pop(None) if v]
            raise InputError(f"Job {i} of {source} has {len(extra)} value(s) beyond the header's fields: "
                             f"{', '.join(map(repr, extra))}.")
        unknown = [k for k in row if k.strip().replace("-", "_") not in known or k.strip() == "name"]
        if unknown:
            raise InputError(f"Job {i} of {source} has unknown field(s) {', '.join(map(repr, unknown))}; known: "
                             f"{', '.join(sorted(known - {'name'}))}.")
        for k, v in row.items():
            k = k.strip().replace("-", "_")
            if v is None or v == "":
                continue
            if k in _CASTS:
                try:
                    values[k] = _CASTS[k](v)
                except (TypeError, ValueError):
                    what = {_bool: "true or false", _whole: "a whole number"}.get(_CASTS[k], "a number")
                    raise InputError(f"Job {i} of {source}: {k} must be {what}, not {v!r}.") from None
            elif isinstance(v, str):
                values[k] = v
            else:
                raise InputError(f"Job {i} of {source}: {k} must be text, not {type(v).__name__} {v!r}.")
        for k in ("blend", "out", "fbx", "preview", "animation", "start_image", "neutral_image", "flame_model"):
            if values.get(k) and not os.path.isabs(values[k]):
                values[k] = str(source.parent / values[k])
        if not values.get("instruction"):
            raise InputError(f"Job {i} of {source} has no instruction.")
        try:
            check_bake_options(values)
        except InputError as exc:
            raise InputError(f"Job {i} of {source}: {exc}") from None
        values["name"] = f"job {i} ({values['instruction'][:40]!r})"
        jobs.append(Job(**values))
    return jobs


def _open_blend(path: str) -> None:
    if not os.path.isfile(path):
        raise InputError(f"The file {path} does not exist.")
    try:
        bpy.ops.wm.open_mainfile(filepath=path, load_ui=False)
    except RuntimeError:
        raise InputError(f"{path} is not a .blend file Blender can open (not a .blend, truncated or from a newer "
                         f"Blender).") from None


def _open_scene(job: Job):
    """Open the job's .blend (or an empty scene with the default head) and return the face object."""
    if job.blend:
        _open_blend(job.blend)
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        obj = add_default_head(bpy.context)
        if job.object and job.object != obj.name:
            obj.name = job.object
        return obj
    if job.object:
        obj = bpy.data.objects.get(job.object)
        if obj is None:
            raise InputError(f"There is no object named {job.object!r} in {job.blend}.")
        return obj
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH" and o.data.shape_keys]
    if len(meshes) != 1:
        raise InputError(f"{job.blend} has {len(meshes)} meshes with shape keys; name one with --object.")
    return meshes[0]


def run_job(job: Job, load: LoadSettings, log=print, force: bool = False, create_folders: bool = False) -> list[str]:
    """One job: generate, write keys, save the outputs together. Returns the paths written. With `create_folders`
    the outputs' folders are made when the outputs land (and not at all when the job fails)."""
    if not job.outputs():
        raise InputError("Give at least one output (--out, --fbx, --preview or --animation).")
    check_outputs([job], force)
    for path in job.outputs():
        check_writable_folder(path, create=create_folders)
    flame_model = job.flame_model or os.environ.get("I2FET_FLAME_MODEL", "")
    target = targets.face_target(_open_scene(job), targets.FlameFile(flame_model, FLAME_FILE_SOURCES))
    obj = target.obj
    scene = bpy.context.scene
    if job.fps:
        scene.render.fps, scene.render.fps_base = int(job.fps), 1.0
    elif not job.blend:
        scene.render.fps, scene.render.fps_base = 30, 1.0
    fps_exact = scene_fps(scene)
    runtime = get_runtime(load)
    anim = runtime.generate(job.instruction, fps=generation_fps(fps_exact), seed=job.seed, duration=job.duration,
                            intensity=job.intensity, start_image=job.start_image, neutral_image=job.neutral_image,
                            life=job.life)
    for warning in anim.warnings:
        print(f"i2fet batch: warning: {warning}", file=sys.stderr, flush=True)
    result = target.write(anim, start_frame=job.start_frame, fps=fps_exact, mirror=job.mirror, reduce=job.reduce_keys)
    for warning in result.warnings:
        if warning not in anim.warnings:
            print(f"i2fet batch: warning: {warning}", file=sys.stderr, flush=True)
    scene.frame_start = min(scene.frame_start, result.start_frame) if job.blend else result.start_frame
    scene.frame_end = max(scene.frame_end, result.end_frame) if job.blend else result.end_frame
    scene.frame_set(result.start_frame)
    log(f"  keyed {result.num_keys} keys on the {target.kind} {obj.name!r}, frames "
        f"{result.start_frame}-{result.end_frame} at {fps_exact:g} fps")
    with StagedOutputs(create_folders=create_folders) as staged:
        if job.animation:
            anim.save(staged.stage(job.animation))
        if job.preview:
            write_animation_preview(anim, staged.stage(job.preview))
        if job.fbx:
            with interrupts_deferred():
                targets.export_fbx(bpy.context, obj, job.fbx, preset=job.preset,
                                   frame_range=(result.start_frame, result.end_frame),
                                   staged_path=str(staged.stage(job.fbx)))
        if job.out:
            tmp = staged.stage(job.out)
            os.unlink(tmp)  # let Blender create it (saving over an existing file leaves a .blend1 backup)
            with interrupts_deferred():
                bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True, check_existing=False)
    return job.outputs()


def bake(instruction: str, outdir: str | os.PathLike, blend: str | None = None, object_name: str | None = None,
         fps: int | None = 30, seed: int = 0, duration: float | None = None, intensity: float = 1.0,
         start_frame: int = 1, preset: str = DEFAULT_PRESET, device: str = "auto", start_image: str | None = None,
         neutral_image: str | None = None, flame_model: str | None = None, force: bool = False,
         model: str = DEFAULT_MODEL, life: bool = False, log=print) -> dict[str, str]:
    """Bake one instruction to OUTDIR/<slug>.blend, .fbx and .png (on the default head unless `blend` is given);
    OUTDIR is made when the outputs land."""
    job = Job(instruction=instruction, blend=blend, object=object_name, start_frame=start_frame,
              **bake_outputs(instruction, outdir), fps=None if (blend and fps is None) else fps, seed=seed,
              duration=duration, intensity=intensity, preset=preset, start_image=start_image,
              neutral_image=neutral_image, flame_model=flame_model, life=life, name=instruction)
    run_job(job, LoadSettings(model=model, device=device), log=log, force=force, create_folders=True)
    return {"blend": job.out, "fbx": job.fbx, "preview": job.preview}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2fet_blender.batch", description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--instruction", help="one job: what the face should do")
    what.add_argument("--jobs", help="many jobs: a .json list or a .csv table with the option names as fields")
    what.add_argument("--bake", metavar="INSTRUCTION", help="bake to OUTDIR/<slug>.blend/.fbx/.png (needs -o)")
    p.add_argument("-o", "--outdir", help="output folder for --bake")
    add_bake_options(p)
    p.add_argument("--out", help="output .blend")
    p.add_argument("--fbx", help="output .fbx")
    p.add_argument("--preview", help="output .png contact sheet")
    p.add_argument("--animation", help="output .json/.npz/.csv animation")
    p.add_argument("--mirror", action="store_true")
    p.add_argument("--reduce-keys", action="store_true")
    p.add_argument("--force", action="store_true", help="replace outputs that already exist")
    return p


def script_args(argv: list[str]) -> list[str]:
    """The arguments meant for this script: those after `--` when Blender's own come first."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(script_args(sys.argv[1:] if argv is None else argv))
    with interrupts_raise():
        try:
            return _run(args)
        except KeyboardInterrupt:  # SIGINT or SIGTERM: the job in progress has removed what it staged
            print("i2fet batch: interrupted; the job in progress wrote nothing.", file=sys.stderr, flush=True)
            return 130


def _run(args: argparse.Namespace) -> int:
    load = LoadSettings(model=args.model, device=args.device)
    shared = dict(blend=args.blend, object=args.object, start_frame=args.start_frame, fps=args.fps, seed=args.seed,
                  duration=args.duration, intensity=args.intensity, mirror=args.mirror,
                  reduce_keys=args.reduce_keys, preset=args.preset, start_image=args.start_image,
                  neutral_image=args.neutral_image, flame_model=args.flame_model, life=args.life)
    try:
        check_bake_options(shared)
        if args.bake is not None:
            if not args.outdir:
                raise I2FETError("--bake needs an output folder: -o OUTDIR.")
            print(f"Baking {args.bake[:60]!r} into {args.outdir}", flush=True)
            paths = bake(args.bake, args.outdir, blend=args.blend, object_name=args.object,
                         fps=args.fps if args.fps or args.blend else 30, seed=args.seed, duration=args.duration,
                         intensity=args.intensity, start_frame=args.start_frame, preset=args.preset,
                         device=args.device, start_image=args.start_image, neutral_image=args.neutral_image,
                         flame_model=args.flame_model, force=args.force, model=args.model,
                         life=args.life)
            print("Wrote " + ", ".join(paths.values()), flush=True)
            return 0
        if args.jobs:
            jobs = read_jobs(args.jobs, shared)
        else:
            job = Job(instruction=args.instruction, out=args.out, fbx=args.fbx, preview=args.preview,
                      animation=args.animation, name=repr(args.instruction[:40]), **shared)
            check_bake_options(vars(job))
            jobs = [job]
        check_outputs(jobs, args.force)
    except I2FETError as exc:
        print(f"i2fet batch: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug, not a user mistake: still one line and a non-zero exit
        print(f"i2fet batch: failed unexpectedly: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    failed = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.name}", flush=True)
        try:
            written = run_job(job, load, force=args.force)
        except I2FETError as exc:
            failed.append((job, str(exc)))
            print(f"  failed: {exc}", flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - report and go on with the other jobs
            failed.append((job, f"{type(exc).__name__}: {exc}"))
            print(f"  failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"  wrote {', '.join(written)}", flush=True)
    for job, message in failed:
        print(f"i2fet batch: FAILED {job.name}: {message}", file=sys.stderr, flush=True)
    print(f"{len(jobs) - len(failed)} of {len(jobs)} job(s) done.", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    exit_after_bpy(main())  # inside `blender --background --python` too: it ends Blender with the code
