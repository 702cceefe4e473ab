"""I2FET for Blender: type an instruction, get shape-key facial animation (sidebar tab "I2FET" in the 3D View).

Registration imports the Blender modules lazily so that the bpy-free helpers (`keys`, `runtime_cache`,
`runtime_env`) stay importable without Blender. When the runtime was installed into the extension's own folder
(preferences → Install Runtime), that folder is appended to `sys.path` here.
"""

from __future__ import annotations

_classes: list = []


def _all_classes():
    from . import flame_ops, operators, panels, preferences, properties, video_import

    return [*properties.CLASSES, *preferences.CLASSES, *operators.CLASSES, *flame_ops.CLASSES, *video_import.CLASSES,
            *panels.CLASSES]


def register():
    import bpy

    from . import properties, runtime_env

    try:
        if __package__.startswith("bl_ext."):  # an installed extension (not the development checkout)
            runtime_env.activate(runtime_env.runtime_folder(__package__))
    except Exception:  # noqa: BLE001 - a missing runtime folder must never block registration
        pass
    _classes[:] = _all_classes()
    for cls in _classes:
        bpy.utils.register_class(cls)
    properties.register_props()


def unregister():
    import bpy

    from . import properties, runtime_cache

    properties.unregister_props()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    _classes.clear()
    runtime_cache.release()
