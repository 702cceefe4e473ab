"""Fuzzing the FLAME model loader and the FLAME sequence reader (issue 11): byte and member mutations of real-format
and crafted pickles and npz files, run in a child process under a time limit (a crash or a hang fails the test), and
hypothesis-built files. Every outcome must be a loaded model or sequence, or one sentence (an I2FETError)."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flame_samples import tiny_flame_arrays
from hostile_files import ForgedSparse, forged_pointer_array, global_call, pickled
from model_runtime.errors import I2FETError, InputError
from model_runtime.rigs import load_flame
from model_runtime.rigs.flame_sequence import load_flame_sequence

ROOT = Path(__file__).resolve().parents[1]

FUZZ_CHILD = textwrap.dedent('''
    import io, json, random, struct, sys, time, zipfile
    from pathlib import Path
    from model_runtime.errors import I2FETError
    from model_runtime.rigs import load_flame
    from model_runtime.rigs.flame_sequence import load_flame_sequence

    seeds_dir, work, iterations, budget = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    seeds = {p.name: p.read_bytes() for p in sorted(seeds_dir.iterdir())}
    names = sorted(seeds)
    rng = random.Random(11)
    INTERESTING = [struct.pack("<i", 2**31 - 1), struct.pack("<I", 2**32 - 1), struct.pack("<q", -1),
                   struct.pack("<q", 2**63 - 1), b"\\x00" * 4, b"\\xff" * 8, b"9999999999", b"(10000000000, 3)"]

    def mutate(data):
        data = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            if not data:
                data = bytearray(b"\\x80")
            op, at = rng.randrange(7), rng.randrange(len(data))
            if op == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif op == 1:
                data[at] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            elif op == 2:
                del data[at:at + rng.randrange(1, 64)]
            elif op == 3:
                piece = data[at:at + rng.randrange(1, 64)]
                data[at:at] = piece * rng.choice((1, 2, 16))
            elif op == 4:
                del data[at:]
            elif op == 5:
                value = rng.choice(INTERESTING)
                data[at:at + len(value)] = value
            else:
                other = seeds[rng.choice(names)]
                start = rng.randrange(len(other))
                data[at:at + rng.randrange(1, 256)] = other[start:start + rng.randrange(1, 256)]
        return bytes(data)

    def mutate_member(data):
        """Mutate one .npy member of an npz and zip it again, so the zip's checksums do not hide the change."""
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            members = {info.filename: source.read(info) for info in source.infolist()}
        target = rng.choice(sorted(members))
        members[target] = mutate(members[target])
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))) as zipped:
            for name, content in members.items():
                zipped.writestr(name, content)
        return out.getvalue()

    counts, failures, began, runs = {"loaded": 0, "refused": 0}, [], time.monotonic(), 0
    while runs < iterations and time.monotonic() - began < budget:
        name = names[runs % len(names)]
        data = mutate_member(seeds[name]) if name.endswith(".npz") and rng.random() < 0.6 else mutate(seeds[name])
        path = work / ("case" + Path(name).suffix)
        path.write_bytes(data)
        runs += 1
        try:
            (load_flame if name.startswith("model") else load_flame_sequence)(path)
            counts["loaded"] += 1
        except I2FETError as exc:
            text = str(exc)
            counts["refused"] += 1
            if not text.endswith(".") or "\\n" in text or len(text) > 1500:
                failures.append([name, "not one sentence", text[:300]])
        except Exception as exc:  # noqa: BLE001 -- anything else is what the fuzzer looks for
            failures.append([name, type(exc).__name__, str(exc)[:300]])
            (work / f"failure-{len(failures)}-{name}").write_bytes(data)
    print(json.dumps({"runs": runs, **counts, "failures": failures, "seconds": time.monotonic() - began}))
''')


def write_seeds(folder: Path):
    """Real-format files (FLAME 2020 chumpy pickles, 2023 pickles, npz; DECA/EMOCA/SMIRK sequences) and crafted ones."""
    from test_flame_file import write_2020_pickle, write_2023_pickle, write_npz

    folder.mkdir()
    model = tiny_flame_arrays()
    write_2020_pickle(folder / "model-2020-p2.pkl", model, 2)
    write_2020_pickle(folder / "model-2020-p0.pkl", model, 0)
    write_2023_pickle(folder / "model-2023-p2.pkl", model, 2)
    write_2023_pickle(folder / "model-2023-p5.pkl", model, 5)
    write_npz(folder / "model.npz", model)
    regressor = scipy.sparse.csc_matrix(model["J_regressor"])
    forged = {**model, "J_regressor": ForgedSparse(regressor, indices=forged_pointer_array((regressor.nnz,)))}
    (folder / "model-forged.pkl").write_bytes(pickled(forged))
    big_endian = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in model.items()}
    (folder / "model-big-endian.pkl").write_bytes(pickle.dumps(big_endian, protocol=2))
    rng = np.random.default_rng(2)
    exp, jaw = rng.normal(0, 1, (5, 50)), rng.normal(0, 0.1, (5, 3))
    (folder / "seq-deca.pkl").write_bytes(pickle.dumps({"exp": exp, "pose": np.hstack([jaw, jaw]), "fps": 25.0},
                                                       protocol=4))
    frames = [{"expcode": exp[i][None], "posecode": np.hstack([jaw[i], jaw[i]])[None]} for i in range(5)]
    (folder / "seq-emoca.pkl").write_bytes(pickle.dumps(frames, protocol=2))
    (folder / "seq-p0.pkl").write_bytes(pickle.dumps({"expression": exp.astype(np.float32), "jaw_pose": jaw},
                                                     protocol=0))
    np.savez(folder / "seq-smirk.npz", expression_params=exp, jaw_params=jaw, pose_params=jaw, fps=np.float64(30))
    (folder / "seq-forged.pkl").write_bytes(pickled({"exp": forged_pointer_array((5, 50))}))
    (folder / "seq-ndarray.pkl").write_bytes(global_call("numpy", "ndarray", (5, 50), key="exp"))


def test_mutated_files_give_a_model_or_one_sentence_never_a_crash(tmp_path):
    seeds, work = tmp_path / "seeds", tmp_path / "work"
    write_seeds(seeds)
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), I2FET_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", FUZZ_CHILD, str(seeds), str(work), "3000", "10"],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])  # a negative code is a signal
    report = json.loads(result.stdout)
    assert report["failures"] == [], report["failures"][:5]
    assert result.stderr == "", result.stderr[-3000:]  # no warnings beside the sentence the CLI prints
    assert report["runs"] >= 100 and report["loaded"] > 0 and report["refused"] > 0, report


# ----------------------------------------------------------------------------------------------------------------
# Structured files from hypothesis

SEQUENCE_KEYS = ["exp", "expression", "expcode", "jaw_pose", "pose", "global_pose", "neck_pose", "eye_pose", "fps",
                 "junk"]
DTYPES = ["<f8", ">f8", "<f4", "<f2", "<i4", ">i8", "<u1", "|b1"]
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, 1.0, 1e300, -1e300])


def arrays():
    shapes = st.lists(st.sampled_from([0, 1, 2, 3, 5, 6, 15, 50]), min_size=0, max_size=3).map(tuple)
    def build(shape, dtype, fill):
        with np.errstate(all="ignore"):
            return np.full(shape, fill).astype(dtype, casting="unsafe")

    return st.builds(build, shapes, st.sampled_from(DTYPES), FLOATS)


def plain_values():
    return (arrays() | st.integers(min_value=-10**500, max_value=10**500) | FLOATS
            | st.lists(st.integers(-10, 10**400) | FLOATS, max_size=6) | st.text(max_size=5) | st.none())


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                    HealthCheck.too_slow])
@given(content=st.dictionaries(st.sampled_from(SEQUENCE_KEYS), plain_values(), max_size=5),
       as_npz=st.booleans(), protocol=st.sampled_from([0, 2, 5]))
def test_structured_sequences_give_a_sequence_or_one_sentence(tmp_path, content, as_npz, protocol):
    if as_npz and all(isinstance(v, np.ndarray) for v in content.values()):
        path = tmp_path / "seq.npz"
        np.savez(path, **content)
    else:
        path = tmp_path / "seq.pkl"
        path.write_bytes(pickle.dumps(content, protocol=protocol))
    try:
        sequence = load_flame_sequence(path)
    except InputError as exc:
        assert str(exc).endswith(".") and "\n" not in str(exc)
    else:
        assert sequence.expression.ndim == 2 and sequence.num_frames >= 1
        assert np.all(np.isfinite(sequence.expression)) and sequence.jaw_pose.shape == (sequence.num_frames, 3)


# Shapes each required array has somewhere in a FLAME file (V = 60 here), and near misses.
MODEL_SHAPES = [(60, 3), (59, 3), (60, 3, 310), (60, 3, 0), (180, 310), (60, 3, 36), (180, 36), (36, 180), (5, 60),
                (60, 5), (2, 5), (80, 3), (0, 3), (60,), (), (0,), (1, 60, 3), (5, 59), (2, 4), (10**5, 0)]


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                   HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(tiny_flame_arrays())), shape=st.sampled_from(MODEL_SHAPES),
       dtype=st.sampled_from(DTYPES), fill=FLOATS, protocol=st.sampled_from([0, 2, 5, None]))
def test_models_with_one_altered_array_load_or_give_one_sentence(tmp_path, monkeypatch, key, shape, dtype, fill,
                                                                  protocol):
    monkeypatch.setenv("I2FET_CACHE_DIR", str(tmp_path / "cache"))
    model = tiny_flame_arrays()
    with np.errstate(all="ignore"):
        model[key] = np.full(shape, fill).astype(dtype, casting="unsafe")
    if protocol is None:
        path = tmp_path / "flame.npz"
        np.savez(path, **model)
    else:
        path = tmp_path / "flame.pkl"
        path.write_bytes(pickle.dumps(model, protocol=protocol))
    try:
        loaded = load_flame(path)
    except I2FETError as exc:
        assert str(exc).endswith(".") and "\n" not in str(exc)
    else:
        assert loaded.v_template.shape == (60, 3) and np.all(np.isfinite(loaded.shapedirs))


@pytest.mark.parametrize("kind", ["model", "sequence"])
def test_every_seed_is_either_read_or_refused_as_intended(tmp_path, kind, monkeypatch):
    """The fuzz seeds themselves: the real-format ones load, the crafted ones are refused."""
    monkeypatch.setenv("I2FET_CACHE_DIR", str(tmp_path / "cache"))
    write_seeds(tmp_path / "seeds")
    for path in sorted((tmp_path / "seeds").glob(f"{'model' if kind == 'model' else 'seq'}*")):
        load = load_flame if kind == "model" else load_flame_sequence
        if "forged" in path.name or "ndarray" in path.name:
            with pytest.raises(I2FETError, match="refused"):
                load(path)
        else:
            load(path)
