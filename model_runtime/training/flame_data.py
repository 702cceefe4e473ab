"""FLAME-space training data: sequences of FLAME parameters (50 expression + 3 jaw) with the instructions that
describe them, and optionally the FLAME model for the vertex loss, both read through `rigs/`: any sequence file
`rigs.flame_sequence` reads (DECA, EMOCA, SMIRK, plain npz) with a `text`, and a full FLAME file or the compact
npz of `rigs.flame_layer.load_flame_model`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..models.config import I2FETConfig
from ..models.features import manner_vector
from ..rigs.flame_layer import load_flame_model
from ..rigs.flame_sequence import load_flame_sequences
from . import say
from .texts import encode_texts


class FlameData:
    def __init__(self, cfg: I2FETConfig, seed: int, encoder, work_dir: Path, progress: bool, base: Path):
        tc = cfg.train
        if not cfg.data.flame_sequences:
            raise InputError("A FLAME-space config needs [data] flame_sequences (a folder of .npz sequences).")
        self.cfg, self.seed = cfg, seed
        self.sequences = load_flame_sequences(_resolve(base, cfg.data.flame_sequences))
        self.layer = load_flame_model(_resolve(base, cfg.data.flame_model)) if cfg.data.flame_model else None
        texts: dict[str, int] = {}
        self.seq_of, self.text_of = [], []
        for si, seq in enumerate(self.sequences):
            for text in seq.texts:
                self.seq_of.append(si)
                self.text_of.append(texts.setdefault(text, len(texts)))
        self.texts = list(texts)
        self.apex = [apex_index(s.frames) for s in self.sequences]
        self.tokens, self.mask = encode_texts(encoder, self.texts, tc.max_tokens, work_dir, progress)
        if progress:
            say(f"{len(self.sequences)} FLAME sequences, {len(self.texts)} distinct texts"
                 f"{'' if self.layer else ' (no FLAME model given: no vertex loss)'}")

    def _resample(self, frames: np.ndarray, n: int) -> np.ndarray:
        src = np.linspace(0.0, 1.0, len(frames))
        dst = np.linspace(0.0, 1.0, n)
        return np.stack([np.interp(dst, src, frames[:, c]) for c in range(frames.shape[1])], 1).astype(np.float32)

    def batch(self, step: int, device) -> dict:
        tc = self.cfg.train
        rng = np.random.default_rng([self.seed, step, 1])
        b = tc.batch_size
        rows = rng.integers(len(self.seq_of), size=b)
        seqs = [self.sequences[self.seq_of[r]] for r in rows]
        apex = [self.apex[self.seq_of[r]] for r in rows]
        start = np.stack([s.frames[0] for s in seqs])
        target = np.stack([s.frames[a] for s, a in zip(seqs, apex)])
        onset = [s.frames[:max(a, 1) + 1] for s, a in zip(seqs, apex)]
        seq = np.stack([self._resample(o, tc.sequence_frames) for o in onset])
        tr = np.stack([self._resample(o, tc.transition_points) for o in onset])
        text_ids = np.asarray([self.text_of[r] for r in rows])
        mask = self.mask[text_ids]
        length = int(mask.sum(1).max())
        g = torch.Generator().manual_seed(int(self.seed) * 7_000_003 + step)
        manners = np.stack([manner_vector(None) for _ in range(b)])
        return {
            "tokens": self.tokens[text_ids, :length].to(device, torch.float32), "mask": mask[:, :length].to(device),
            "start": torch.as_tensor(start, device=device), "target": torch.as_tensor(target, device=device),
            "side": torch.zeros(b, dtype=torch.long, device=device),
            "labels": torch.as_tensor(text_ids, device=device),
            "seq": torch.as_tensor(seq, device=device), "seq_mask": torch.ones(b, tc.sequence_frames, dtype=torch.bool,
                                                                               device=device),
            "noise": torch.randn(b, self.cfg.generator.z_dim, generator=g).to(device),
            "tr_start": torch.as_tensor(start, device=device), "tr_end": torch.as_tensor(target, device=device),
            "tr_manner": torch.as_tensor(manners, device=device),
            "tr_u": torch.linspace(0.0, 1.0, tc.transition_points, device=device),
            "tr_frames": torch.as_tensor(tr, device=device),
        }


def _resolve(base: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (base / p)


def apex_index(frames: np.ndarray, start: np.ndarray | None = None) -> int:
    """The frame farthest from the first one: where the expression peaks."""
    ref = frames[0] if start is None else start
    return int(np.argmax(np.abs(frames - ref).sum(-1)))
