"""I2FET runtime: instruction -> ARKit-52 facial animation. Pure Python + torch; never imports bpy.

Heavy modules load on first use so that `import model_runtime` stays cheap (the Blender extension imports it at
registration time).

Layout: `runtime` (load once, generate), `cli` (the `i2fet` command), `animation` (the result and its files), `paths`
(atomic writes, the cache helper); the instruction language (`instructions`, `timeline`), the knowledge base
(`knowledge`, `expression_space`), `generators/` (what turns segments into keys and frames), `models/` (the learned
model's parts), `encoders/`, `heads/` (the default head, renderer, preview), `rigs/` (FLAME, shape transfer),
`photo/` (a start expression from a picture), `training/` and `evaluation/`.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Animation", "Runtime", "I2FETError", "InputError", "WeightsError", "OutputError", "__version__"]

from .errors import I2FETError, InputError, OutputError, WeightsError


def __getattr__(name: str):
    if name == "Runtime":
        from .runtime import Runtime

        return Runtime
    if name == "Animation":
        from .animation import Animation

        return Animation
    raise AttributeError(f"module 'model_runtime' has no attribute {name!r}")
