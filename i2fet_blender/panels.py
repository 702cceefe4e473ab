"""The "I2FET" tab of the 3D View sidebar."""

from __future__ import annotations

import bpy


class _Base:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "I2FET"


class I2FET_PT_main(_Base, bpy.types.Panel):
    bl_label = "Instruction to Face"
    bl_idname = "I2FET_PT_main"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.i2fet
        layout.prop(settings, "target")
        if settings.target is None:
            obj = context.active_object
            layout.label(text=f"Using the active object: {obj.name}" if obj else "Select a mesh or add the default head",
                         icon="OBJECT_DATA" if obj else "INFO")
        layout.operator("i2fet.add_default_head", icon="USER")
        layout.prop(settings, "instruction", text="")
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(settings, "use_scene_fps")
        sub = row.row(align=True)
        sub.enabled = not settings.use_scene_fps
        sub.prop(settings, "fps")
        row = col.row(align=True)
        row.prop(settings, "use_current_frame")
        sub = row.row(align=True)
        sub.enabled = not settings.use_current_frame
        sub.prop(settings, "start_frame", text="Start")
        row = col.row(align=True)
        row.prop(settings, "auto_duration")
        sub = row.row(align=True)
        sub.enabled = not settings.auto_duration
        sub.prop(settings, "duration", text="Seconds")
        row = layout.row(align=True)
        row.prop(settings, "use_start_image", text="", icon="IMAGE_DATA")
        sub = row.row(align=True)
        sub.enabled = settings.use_start_image
        sub.prop(settings, "start_image", text="Start From")
        row = layout.row(align=True)
        row.enabled = settings.use_start_image
        row.prop(settings, "neutral_image", text="Neutral Photo")
        col = layout.column(align=True)
        col.prop(settings, "intensity", slider=True)
        col.prop(settings, "seed")
        layout.prop(settings, "life")
        row = layout.row(align=True)
        row.prop(settings, "mirror", toggle=True)
        row.prop(settings, "reduce_keys", toggle=True)
        if settings.reduce_keys:
            layout.prop(settings, "tolerance")
        layout.operator("i2fet.generate", icon="PLAY")
        layout.operator("i2fet.import_face_video", icon="FILE_MOVIE")
        if settings.status:
            layout.label(text=settings.status, icon="INFO")
        row = layout.row(align=True)
        row.operator("i2fet.clear_generated", icon="X")
        row.operator("i2fet.export_fbx", icon="EXPORT")


class I2FET_PT_segments(_Base, bpy.types.Panel):
    bl_label = "Segments"
    bl_parent_id = "I2FET_PT_main"

    @classmethod
    def poll(cls, context):
        return len(context.scene.i2fet.segments) > 0

    def draw(self, context):
        for seg in context.scene.i2fet.segments:
            row = self.layout.row()
            row.label(text=seg.label or seg.text)
            row.label(text=f"{seg.start_frame}-{seg.end_frame}")
            row.label(text=f"{seg.confidence:.0%}")


class I2FET_PT_history(_Base, bpy.types.Panel):
    bl_label = "History"
    bl_parent_id = "I2FET_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.i2fet.history) > 0

    def draw(self, context):
        for i, item in enumerate(context.scene.i2fet.history):
            row = self.layout.row()
            row.label(text=item.instruction)
            row.operator("i2fet.rerun", text="", icon="FILE_REFRESH").index = i


class I2FET_PT_heads(_Base, bpy.types.Panel):
    bl_label = "FLAME and Other Heads"
    bl_parent_id = "I2FET_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        col = self.layout.column(align=True)
        col.operator("i2fet.add_flame_head", icon="MESH_MONKEY")
        col.operator("i2fet.add_arkit_shape_keys", icon="SHAPEKEY_DATA")
        row = self.layout.row(align=True)
        row.operator("i2fet.import_flame_sequence", icon="IMPORT", text="Import FLAME")
        row.operator("i2fet.export_flame_sequence", icon="EXPORT", text="Export FLAME")


CLASSES = (I2FET_PT_main, I2FET_PT_segments, I2FET_PT_history, I2FET_PT_heads)
