"""Mutation testing of the code that protects users: does a deliberate bug in a safety check make a test fail?

For each target (a module, the functions in it that guard users, the tests that should notice) the script makes
mutants of those functions with `ast` (a comparison flipped, a guard's condition made false, one operand of an
and/or dropped, `not` removed, `.all()` <-> `.any()`), adds the hand-written mutants of issue 16 (each a text
replacement), runs the target's test files against each mutant in a private copy of the tree (a timeout counts as
killed), and lists the survivors. Exit status: 0 when no mutant survives except those in EQUIVALENT, 1 otherwise.

    PYTHONPATH=$PWD .venv/bin/python scripts/mutation_test.py [--target NAME] [--list] [--jobs N]

Mutants are tried against the target's fast test file first (tests/test_safety_*.py,
tests/blender/test_blender_safety_mutants.py), then the others; one failing test kills a mutant.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300  # a mutant that makes a test run this long counts as killed


@dataclass
class Target:
    name: str
    module: str
    functions: tuple[str, ...]  # qualified names ("Class.method"); mutants are made only inside these
    tests: tuple[str, ...]
    custom: tuple[tuple[str, str, str], ...] = ()  # (description, text to replace, replacement)


_WIDEN_NUMPY = ("        found = _ALLOWED.get((module, name))\n",
                "        found = _ALLOWED.get((module, name))\n"
                "        if found is None and module.split('.')[0] == 'numpy':\n"
                "            import importlib\n"
                "            found = getattr(importlib.import_module(module), name)\n")

TARGETS = (
    Target("flame_file", "model_runtime/rigs/flame_file.py", ("_read_pickle", "_check_shapes"),
           ("tests/test_safety_flame_shapes.py", "tests/test_flame_file.py")),
    Target("instructions", "model_runtime/instructions.py", ("_split", "_trim"),
           ("tests/test_safety_splitter.py", "tests/test_instructions.py"),
           (("the parser no longer splits on a spaced dash", r"|\s[-–—]+\s|", "|"),)),
    Target("fbx_preflight", "i2fet_blender/fbx_export.py", ("preflight", "_key_curves"),
           ("tests/blender/test_blender_safety_mutants.py", "tests/blender/test_blender_fbx_export.py")),
    Target("writer_checks", "i2fet_blender/writer.py", ("check_target", "write_animation"),
           ("tests/blender/test_blender_safety_mutants.py", "tests/blender/test_blender_writer.py")),
    Target("animation", "model_runtime/animation.py", ("Animation.__post_init__", "Animation.from_dict",
                                                        "_check_segment"),
           ("tests/test_safety_animation.py", "tests/test_animation.py"),
           (("NaN refused only when a whole row is NaN", "np.isfinite(self.frames).all(axis=1)",
             "np.isfinite(self.frames).any(axis=1)"),
            ("negative weights silently clipped", "if frames.min() < -_VALUE_TOLERANCE or ",
             "if "))),
    Target("unpickler", "model_runtime/rigs/untrusted_arrays.py",
           ("plain_dtype", "_count", "_as_bytes", "_Gate.__setstate__", "_NdarrayName.__call__",
            "_PickledDtype.__setstate__", "_pickled_dtype", "_real_dtype", "_PickledArray.__setstate__",
            "_reconstruct", "_frombuffer", "_scalar", "ChumpyArray.to_array", "SparseMatrix.declared_shape",
            "SparseMatrix.to_array", "_latin1_bytes", "_empty_bytes", "_stand_in_reconstructor",
            "_RestrictedUnpickler.find_class", "_RestrictedUnpickler.persistent_load", "restricted_unpickle",
            "declared_shape", "to_plain_array", "nested_size", "NpzArrays.header", "NpzArrays.read"),
           ("tests/test_safety_unpickler.py", "tests/test_untrusted_files.py", "tests/test_flame_file.py",
            "tests/test_flame_fuzz.py"),
           (("allow-list widened to every numpy.* global", *_WIDEN_NUMPY),
            ("_codecs.encode stand-in accepts any encoding",
             '"_", "") not in ("latin1", "l1", "iso88591"):\n        raise UntrustedFileError("it encodes text in a way a FLAME file never does")\n    return text.encode("latin1")',
             'False:\n        raise UntrustedFileError("it encodes text")\n    return text.encode(encoding)'))),
)

# Mutants that cannot change behaviour, with the reason; keyed by (target, description).
EQUIVALENT: dict[tuple[str, str], str] = {
    ("animation", "line 73: Lt -> LtE"):
        "frames are float32 there and -1e-4 is not a float32 value, so no weight equals the bound",
    ("animation", "line 73: Gt -> GtE"):
        "frames are float32 there and 1 + 1e-4 is not a float32 value, so no weight equals the bound",
    ("fbx_preflight", "line 40: 'or ad.action is None' dropped"):
        "action_compat.iter_fcurves(None) yields nothing, so _key_curves still returns []",
    ("writer_checks", "line 76: guard 'if interpolation not in INTERPOLATIONS' never raises"):
        "shape_keys.write_curves refuses the same interpolation with the same sentence before it changes anything",
    ("writer_checks", "line 105: 'or {}' dropped"):
        "ChannelMatch.split is a dataclass field that defaults to a dict, never None",
    ("unpickler", "line 48: 'and dtype.fields is None' dropped"):
        "a dtype with fields is never found in the PLAIN_DTYPES frozenset because numpy hashes the fields (even a "
        "float64 with one float64 field, which == float64; test_plain_dtype shows that == alone would admit it)",
    ("unpickler", "line 48: 'and dtype.subdtype is None' dropped"):
        "numpy makes every subarray dtype kind 'V', which equals none of the plain number dtypes",
    ("unpickler", "line 453: 'and dtype.subdtype is None' dropped"):
        "numpy makes every subarray dtype kind 'V', so `dtype.kind == 'U'` already excludes them",
    ("unpickler", "line 341: 'or exc' dropped"):
        "Path.stat raises OSError from errno, which always carries strerror; the fallback is never reached",
}


# --------------------------------------------------------------------------------------------------------------
# Making mutants

_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass
class Mutant:
    target: str
    description: str
    source: str
    result: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _function_nodes(tree: ast.Module, wanted: tuple[str, ...]):
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                if qual in wanted:
                    yield qual, child
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
    found = dict(walk(tree, ""))
    missing = set(wanted) - set(found)
    if missing:
        raise SystemExit(f"mutation_test: functions not found: {', '.join(sorted(missing))}")
    return found


def _guards(node: ast.If) -> bool:
    return any(isinstance(n, ast.Raise) for n in ast.walk(ast.Module(body=node.body, type_ignores=[])))


def _sites(func: ast.AST):
    """(node, kind, detail) for each mutation site inside `func`."""
    for node in ast.walk(func):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _FLIP:
                    yield node, "compare", i
        elif isinstance(node, ast.BoolOp) and len(node.values) > 1:
            for i in range(len(node.values)):
                yield node, "drop", i
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", None
        elif isinstance(node, ast.If) and _guards(node):
            yield node, "guard", None
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("all", "any")):
            yield node, "allany", None


def _apply(tree: ast.Module, path: list, kind: str, detail) -> str:
    """Apply one mutation to the node reached by `path` (field/index steps) in `tree`; returns a description."""
    node = tree
    for step in path:
        node = getattr(node, step) if isinstance(step, str) else node[step]
    line = getattr(node, "lineno", "?")
    if kind == "compare":
        old = node.ops[detail]
        node.ops[detail] = _FLIP[type(old)]()
        return f"line {line}: {type(old).__name__} -> {type(node.ops[detail]).__name__}"
    if kind == "drop":
        op = "and" if isinstance(node.op, ast.And) else "or"
        dropped = ast.unparse(node.values[detail])
        del node.values[detail]
        return f"line {line}: '{op} {dropped[:60]}' dropped"
    if kind == "not":
        # `not x` -> `not not x`, which is `x` as a truth value
        node.operand = ast.UnaryOp(op=ast.Not(), operand=node.operand)
        return f"line {line}: 'not' removed"
    if kind == "guard":
        text = ast.unparse(node.test)
        node.test = ast.Constant(False)
        return f"line {line}: guard 'if {text[:60]}' never raises"
    if kind == "allany":
        old = node.func.attr
        node.func.attr = "any" if old == "all" else "all"
        return f"line {line}: .{old}() -> .{node.func.attr}()"
    raise AssertionError(kind)


def _paths(root: ast.AST, wanted: set[int]):
    """Field/index paths from `root` to the nodes whose id is in `wanted`."""
    out = {}
    stack = [(root, [])]
    while stack:
        node, path = stack.pop()
        if id(node) in wanted:
            out[id(node)] = path
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.AST):
                stack.append((value, path + [name]))
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        stack.append((item, path + [name, i]))
    return out


def mutants_for(target: Target) -> list[Mutant]:
    original = (ROOT / target.module).read_text(encoding="utf-8")
    tree = ast.parse(original)
    sites = [site for _, func in sorted(_function_nodes(tree, target.functions).items()) for site in _sites(func)]
    paths = _paths(tree, {id(node) for node, _, _ in sites})
    out = []
    seen = set()
    for node, kind, detail in sites:
        copy = ast.parse(original)
        description = _apply(copy, paths[id(node)], kind, detail)
        source = ast.unparse(copy)
        if source in seen:
            continue
        seen.add(source)
        out.append(Mutant(target.name, description, source))
    for description, old, new in target.custom:
        if original.count(old) != 1:
            raise SystemExit(f"mutation_test: the text of custom mutant {description!r} is not in {target.module} once")
        out.append(Mutant(target.name, description, original.replace(old, new)))
    return out


# --------------------------------------------------------------------------------------------------------------
# Running

def _private_tree() -> Path:
    """A copy of the tree (weights linked, not copied) in which one module at a time is replaced by a mutant."""
    tmp = Path(tempfile.mkdtemp(prefix="i2fet-mutants-"))
    for entry in ROOT.iterdir():
        if entry.name in (".git", ".venv") or entry.name.startswith("."):
            continue
        if entry.name == "weights":
            (tmp / entry.name).symlink_to(entry)
        elif entry.is_dir():
            shutil.copytree(entry, tmp / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(entry, tmp / entry.name)
    return tmp


def _run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[bool, str]:
    """(killed, which test file killed it)."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    for test in tests:
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", test, "-x", "-q", "-p", "no:cacheprovider"],
                                  cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return True, f"{test} (timeout)"
        if proc.returncode not in (0, 5):  # 5: no tests collected (a file filtered to nothing)
            return True, test
    return False, ""


_WORKER = """
import importlib, shutil, signal, sys
import pytest
module, fast, count, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ours = ("model_runtime", "i2fet_blender", "test_", "conftest", "hostile_files", "flame_samples", "blender_helpers",
        "mesh_variants")

def alarm(*_):
    raise TimeoutError("mutant ran too long")

signal.signal(signal.SIGALRM, alarm)
for i in range(count):
    shutil.copyfile(f".mutants/{i}.py", module)
    for name in [n for n in sys.modules if n.startswith(ours)]:
        del sys.modules[name]
    importlib.invalidate_caches()
    signal.alarm(limit)
    try:
        rc = int(pytest.main([fast, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]))
    except TimeoutError:
        rc = 99
    signal.alarm(0)
    print(f"RESULT {i} {rc}", flush=True)
"""


def run_target(target: Target, mutants: list[Mutant]) -> None:
    """All mutants against the fast file in one process (pytest.main per mutant, the project's modules re-imported
    each time, heavy libraries kept), then each survivor against the other files in a fresh process."""
    tree = _private_tree()
    try:
        module = tree / target.module
        original = module.read_text(encoding="utf-8")
        killed, _ = _run_tests(tree, target.tests[:1])  # the rest run in the full suite
        if killed:
            raise SystemExit(f"mutation_test: the tests of {target.name} fail without any mutation")
        (tree / ".mutants").mkdir()
        for i, mutant in enumerate(mutants):
            (tree / ".mutants" / f"{i}.py").write_text(mutant.source, encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", _WORKER, target.module, target.tests[0], str(len(mutants)),
                               str(TIMEOUT_S)], cwd=tree, env=env, capture_output=True, text=True)
        codes = dict(line.split()[1:3] for line in proc.stdout.splitlines() if line.startswith("RESULT "))
        per = (time.monotonic() - start) / max(1, len(mutants))
        for i, mutant in enumerate(mutants):
            rc = int(codes.get(str(i), -1))
            if rc == -1:
                raise SystemExit(f"mutation_test: the worker for {target.name} stopped at mutant {i}:\n"
                                 + proc.stderr[-2000:])
            if rc not in (0, 5):
                mutant.result = f"killed by {target.tests[0]}" + (" (timeout)" if rc == 99 else "")
                mutant.seconds = per
            else:
                module.write_text(mutant.source, encoding="utf-8")
                began = time.monotonic()
                killed, by = _run_tests(tree, target.tests[1:])
                mutant.seconds = time.monotonic() - began
                mutant.result = f"killed by {by}" if killed else "SURVIVED"
            print(f"[{target.name}] {mutant.description}: {mutant.result} ({mutant.seconds:.0f} s)", flush=True)
        module.write_text(original, encoding="utf-8")
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=[t.name for t in TARGETS])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=1, help="targets run in parallel")
    parser.add_argument("--rerun", type=Path, help="only the mutants a previous run's output lists as survivors")
    args = parser.parse_args(argv)
    targets = [t for t in TARGETS if not args.target or t.name in args.target]
    plan = [(t, mutants_for(t)) for t in targets]
    if args.rerun:
        lines = args.rerun.read_text(encoding="utf-8").splitlines()
        again = {line.split(": SURVIVED")[0] for line in lines if line.endswith(")") and ": SURVIVED (" in line}
        plan = [(t, [m for m in ms if f"[{t.name}] {m.description}" in again]) for t, ms in plan]
        plan = [(t, ms) for t, ms in plan if ms]
    if args.list:
        for t, mutants in plan:
            for m in mutants:
                print(f"[{t.name}] {m.description}")
        print(f"{sum(len(m) for _, m in plan)} mutants")
        return 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(lambda tm: run_target(*tm), plan))
    survivors = [m for _, ms in plan for m in ms if m.result == "SURVIVED"]
    unexplained = [m for m in survivors if (m.target, m.description) not in EQUIVALENT]
    total = sum(len(m) for _, m in plan)
    print(f"\n{total} mutants, {total - len(survivors)} killed, {len(survivors)} survived "
          f"({len(survivors) - len(unexplained)} listed as equivalent)")
    for m in survivors:
        reason = EQUIVALENT.get((m.target, m.description), "NOT EXPLAINED")
        print(f"  [{m.target}] {m.description}: {reason}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
