"""Add-on preferences: model/device/encoder settings, the user's FLAME model file, the runtime installer and the
environment check."""

from __future__ import annotations

import os
from types import SimpleNamespace

import bpy
from bpy.props import EnumProperty, StringProperty

from .runtime_cache import LoadSettings
from .targets import FlameFile

PACKAGE = __package__

_DEFAULTS = SimpleNamespace(model="i2fet", device="auto", encoder="minilm", encoder_path="", runtime_variant="cpu",
                            wheel_dir="", environment_log="", flame_model_path="")


class I2FET_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    model: EnumProperty(name="Model", items=[("i2fet", "I2FET", "The shipped learned model"),
                                             ("baseline", "Baseline", "Retrieval baseline: nearest knowledge-base "
                                                                      "expression, no learned weights")],
                        default="i2fet")
    device: EnumProperty(name="Device", default="auto", items=[
        ("auto", "Automatic", "CUDA when available, otherwise CPU"), ("cpu", "CPU", ""), ("cuda", "CUDA", "")])
    encoder: EnumProperty(name="Text Encoder", default="minilm", items=[
        ("minilm", "MiniLM", "all-MiniLM-L6-v2, shipped"), ("openclip", "OpenCLIP", "Your own checkpoint")])
    encoder_path: StringProperty(name="Encoder Weights", subtype="FILE_PATH",
                                 description="Local checkpoint for the OpenCLIP encoder")
    runtime_variant: EnumProperty(name="Install", default="cpu", items=[
        ("cpu", "CPU (PyTorch CPU index)", ""), ("cuda", "CUDA (PyTorch CUDA index)", ""),
        ("wheels", "Local wheel folder (offline)", "")])
    wheel_dir: StringProperty(name="Wheel Folder", subtype="DIR_PATH")
    environment_log: StringProperty(name="Environment", default="")
    flame_model_path: StringProperty(name="FLAME Model", subtype="FILE_PATH",
                                     description="Your own FLAME model file (generic_model.pkl, flame2023.pkl, "
                                                 "flame2023_Open.pkl or an .npz conversion); never shipped")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "model")
        col.prop(self, "device")
        col.prop(self, "encoder")
        if self.encoder == "openclip":
            col.prop(self, "encoder_path")
        col.prop(self, "flame_model_path")
        box = layout.box()
        box.label(text="Runtime (torch and friends, installed into this extension's own folder)")
        row = box.row()
        row.prop(self, "runtime_variant", text="")
        if self.runtime_variant == "wheels":
            box.prop(self, "wheel_dir")
        row.operator("i2fet.install_runtime", icon="IMPORT")
        row = box.row()
        row.operator("i2fet.check_environment", icon="CHECKMARK")
        row.operator("i2fet.copy_environment_log", icon="COPYDOWN")
        row.operator("i2fet.release_memory", icon="TRASH")
        for line in self.environment_log.splitlines():
            box.label(text=line, icon="CHECKMARK" if line.startswith("[ok]") else "ERROR")


def get_prefs(context=None):
    """The add-on preferences, or defaults when the package is not enabled as an add-on (e.g. batch via bpy)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE) if context.preferences else None
    return addon.preferences if addon is not None and addon.preferences is not None else _DEFAULTS


def load_settings(context=None) -> LoadSettings:
    prefs = get_prefs(context)
    return LoadSettings(model=prefs.model, device=prefs.device, encoder=prefs.encoder,
                        encoder_path=bpy.path.abspath(prefs.encoder_path) if prefs.encoder_path else None)


def flame_file(context=None) -> FlameFile:
    """The FLAME model file of the preferences (I2FET_FLAME_MODEL when the add-on is not enabled, e.g. scripts)."""
    path = get_prefs(context).flame_model_path or os.environ.get("I2FET_FLAME_MODEL", "")
    return FlameFile(bpy.path.abspath(path) if path else "", "in the I2FET add-on preferences")


CLASSES = (I2FET_AP_preferences,)
