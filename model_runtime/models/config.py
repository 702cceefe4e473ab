"""Model and training configuration: one TOML (or JSON) file, stored verbatim in the weights' metadata."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..errors import InputError
from ..paths import refuse_special_file
from .au_memory import MemoryConfig
from .generator import AU_COMPOSE, GeneratorConfig
from .ifed import IFEDConfig
from .transition import TransitionConfig


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 192
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 150
    kl_weight: float = 0.02
    weight_loss: float = 1.0
    vertex_loss: float = 1.0
    nce_loss: float = 0.5
    prior_loss: float = 1.0
    transition_batch: int = 128
    transition_points: int = 24
    checkpoint_every: int = 250
    n_single: int = 9000
    n_sequence: int = 2500
    pool_per: int = 48
    sequence_frames: int = 8
    max_tokens: int = 32
    grad_clip: float = 1.0
    log_every: int = 50
    plain_templates: int = 0  # templates used for the plain (concept x phrase x template) set; 0 = all
    au_loss: float = 0.0  # weight of the AU head's loss (presence BCE + core-AU intensity error); needs au_head
    au_texts: int = 0  # training texts naming FACS AUs ("lid tightener plus lip pressor"), with their AUs as target
    describe: bool = False  # also train on "<phrase> showing <its core AUs' FACS names>" for every training phrase
    variant_prob: float = 0.35  # how often a training sample shows each of its concept's variant AUs


@dataclass(frozen=True)
class DataConfig:
    space: str = "arkit"  # "arkit" | "flame"
    flame_model: str | None = None  # a FLAME file or compact npz (see rigs/flame_layer.load_flame_model)
    flame_sequences: str | None = None  # folder of per-sequence .npz files


@dataclass(frozen=True)
class I2FETConfig:
    name: str = "i2fet-arkit-minilm"
    encoder: str = "minilm"
    ifed: IFEDConfig = field(default_factory=IFEDConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    transition: TransitionConfig = field(default_factory=TransitionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


_SECTIONS = {"ifed": IFEDConfig, "generator": GeneratorConfig, "transition": TransitionConfig, "train": TrainConfig,
             "data": DataConfig, "memory": MemoryConfig}


def config_from_dict(raw: dict) -> I2FETConfig:
    kwargs = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            cls = _SECTIONS[key]
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise InputError(f"Unknown setting(s) {', '.join(sorted(unknown))} in the [{key}] section of the "
                                 f"model config.")
            kwargs[key] = cls(**value)
        elif key in ("name", "encoder"):
            kwargs[key] = value
        else:
            raise InputError(f"Unknown section or setting {key!r} in the model config.")
    cfg = I2FETConfig(**kwargs)
    if cfg.generator.au_compose not in AU_COMPOSE:
        raise InputError(f"The generator's au_compose must be one of {', '.join(AU_COMPOSE)}, not "
                         f"{cfg.generator.au_compose!r}.")
    expr_dim = 52 if cfg.data.space == "arkit" else 53
    if cfg.data.space not in ("arkit", "flame"):
        raise InputError(f"The data space must be 'arkit' or 'flame', not {cfg.data.space!r}.")
    frame = cfg.memory.frame
    if not isinstance(frame, str) or frame.count("{") != 1 or frame.count("}") != 1 or "{}" not in frame:
        raise InputError(f"The memory's frame must hold {{}} once, where the text goes, and no other braces, not "
                         f"{frame!r}.")
    fallback = cfg.memory.fallback
    if isinstance(fallback, bool) or not isinstance(fallback, (int, float)) or not 0.0 <= fallback <= 1.0:
        raise InputError(f"The memory's fallback is a fraction of a text's strongest AU, 0 (off) to 1, not "
                         f"{cfg.memory.fallback!r}.")
    if cfg.memory.frame_map and frame == "{}":
        raise InputError("The memory's frame_map reads texts in its frame; it needs a frame other than '{}'.")
    if cfg.memory.enabled and cfg.data.space != "arkit":
        raise InputError("The AU memory ([memory] enabled) reads FACS AUs into ARKit weights; it needs the arkit space.")
    if cfg.ifed.expr_dim != expr_dim or cfg.transition.expr_dim != expr_dim:
        cfg = replace(cfg, ifed=replace(cfg.ifed, expr_dim=expr_dim),
                      transition=replace(cfg.transition, expr_dim=expr_dim),
                      generator=replace(cfg.generator, output=cfg.data.space))
    return cfg


def load_config(path: str | Path) -> I2FETConfig:
    path = Path(path)
    refuse_special_file(path, "model config", "a .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read the model config {path}: {exc.strerror or exc}.") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise InputError(f"The model config {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                         f"{exc}.") from None
    return config_from_dict(raw)
