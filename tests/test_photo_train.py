"""The photo regressor's training command runs end to end and writes a file the runtime accepts."""

import json

import numpy as np

from model_runtime.training import photo as train
from model_runtime.photo.regressor import read_regressor


def test_training_writes_a_usable_regressor(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "VALIDATION_FACES", 12)
    out = tmp_path / "photo-regressor.safetensors"
    train.main(["--out", str(out), "--faces", "40", "--epochs", "2", "--workers", "1"])
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["training"]["faces"] + meta["training"]["faces_lost_by_detector"] == 40
    assert 0 < meta["validation"]["faces"] <= 12 and meta["validation"]["seed"] == meta["training"]["seed"] + 1
    from model_runtime.heads.head import load_default_head
    from model_runtime.photo.correspondence import load_landmark_model

    model = load_landmark_model(load_default_head())
    regressor = read_regressor(out, model.landmark_ids)
    x = np.zeros((3, regressor.mean.shape[0]), np.float32)
    prediction = regressor.predict(x)
    assert prediction.shape == (3, 52) and np.all((prediction >= 0) & (prediction <= 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo-regressor.json", "photo-regressor.safetensors"]
