#!/usr/bin/env bash
# Run the Blender tests (tests/blender) on each supported bpy release, each in its own cached virtualenv.
#
#   scripts/test-blender-versions.sh [VERSION ...]      (default: 4.2.23 4.5.15 5.0.1)
#
# A venv per version lives in $I2FET_BLENDER_VENVS (default ~/.cache/i2fet/blender-venvs/bpy-VERSION) and holds only
# bpy, numpy<2 and pytest; everything else (torch, the runtime's packages) comes from the project's .venv through a
# .pth file placed after the venv's own packages, so the version's bpy and numpy win. The first run of a version
# downloads its bpy wheel (~400 MB); later runs reuse the venv. Prints one line per version and exits non-zero if
# any version failed. Needs Python 3.11 (bpy wheels exist for no other) and the project's .venv (scripts/setup.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROJECT_VENV=${I2FET_PROJECT_VENV:-$ROOT/.venv}
VENVS=${I2FET_BLENDER_VENVS:-$HOME/.cache/i2fet/blender-venvs}
PYTHON=${PYTHON:-python3.11}
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(4.2.23 4.5.15 5.0.1)

if [ ! -x "$PROJECT_VENV/bin/python" ]; then
    echo "The project's virtualenv $PROJECT_VENV is missing; run scripts/setup.sh first." >&2
    exit 2
fi
SITE=$("$PROJECT_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
NUMPY=$(grep -h '^numpy==' requirements/*.txt | head -1)
PYTEST=$(grep -h '^pytest==' requirements/*.txt | head -1)

failed=()
summary=()
for version in "${VERSIONS[@]}"; do
    venv="$VENVS/bpy-$version"
    if [ ! -f "$venv/.ready" ]; then
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv" &&
            "$venv/bin/python" -m pip install --quiet "bpy==$version" "$NUMPY" "$PYTEST" &&
            touch "$venv/.ready"
        if [ ! -f "$venv/.ready" ]; then
            summary+=("bpy $version: could not set up $venv")
            failed+=("$version")
            continue
        fi
    fi
    venv_site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    echo "$SITE" > "$venv_site/zz-i2fet-project.pth"  # read last: this venv's bpy and numpy come first
    echo "== bpy $version =="
    start=$SECONDS
    if PYTHONPATH="$ROOT" "$venv/bin/python" -m pytest tests/blender -q -p no:cacheprovider; then
        summary+=("bpy $version: passed in $((SECONDS - start)) s")
    else
        summary+=("bpy $version: FAILED (see above)")
        failed+=("$version")
    fi
done
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
