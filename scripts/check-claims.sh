#!/usr/bin/env bash
# Rerun the benchmarks and the evaluation behind the README's and the model card's numbers. Each exits non-zero when
# a goal is missed (the tolerance is printed beside each verdict, and the machine's load beside absolute times); this
# script fails if any of them does. How long it takes: the README's Testing section.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD
failed=()
gate() {
    echo "== gate: $*"
    local began=$SECONDS
    "$PY" "$@" || failed+=("$*")
    echo "== $1: $((SECONDS - began)) s"
}
gate benchmarks/bench_instructions.py
gate benchmarks/bench_transfer.py --threads 1
gate benchmarks/bench_blender.py
gate benchmarks/bench_cli.py
gate benchmarks/bench_photo_real.py
gate benchmarks/bench_language.py
gate benchmarks/bench_farm.py
gate benchmarks/bench_runtime_size.py
gate benchmarks/bench_runtime.py --model i2fet
gate benchmarks/bench_model.py
gate benchmarks/bench_flame.py --threads 1
gate benchmarks/bench_evaluation.py
gate benchmarks/bench_au_compose.py
gate benchmarks/bench_margin_spread.py
gate benchmarks/bench_language_real.py
gate benchmarks/bench_language_wordnet.py
gate benchmarks/bench_retrain.py
cv_work=$(mktemp -d)
for fold in 0 1 2 3; do gate benchmarks/bench_concept_cv.py --fold "$fold" --work "$cv_work"; done
gate benchmarks/bench_concept_cv.py --summarize --work "$cv_work"
gate benchmarks/bench_memory_rules.py --work "$cv_work"
rm -rf "$cv_work"
echo "== all gates: $SECONDS s"
if ((${#failed[@]})); then
    printf 'claim check failed: %s\n' "${failed[@]}"
    exit 1
fi
echo "every gated claim met"
