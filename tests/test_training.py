"""A tiny synthetic dataset trained for one epoch at 64 px, exported, and served — all offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from inference_service.taxonomy import load_taxonomy
from training.dataset import build_dataset
from training.importer import SourceSpec, import_all

pytest.importorskip("ultralytics")
REPO = Path(__file__).resolve().parent.parent


def _synthetic_set(root: Path, n: int = 12) -> None:
    """Grey photos with a red square (fire) or a grey-blue blob (smoke) at known places."""
    rng = np.random.default_rng(0)
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(n):
        img = np.full((96, 128, 3), 120, np.uint8) + rng.integers(0, 20, (96, 128, 3), dtype=np.uint8)
        x, y, s = int(rng.integers(0, 80)), int(rng.integers(0, 50)), int(rng.integers(20, 40))
        cls = i % 2
        img[y : y + s, x : x + s] = (220, 30, 30) if cls == 0 else (90, 100, 140)
        Image.fromarray(img).save(root / "images" / f"s{i}.jpg", quality=95)
        cx, cy = (x + s / 2) / 128, (y + s / 2) / 96
        (root / "labels" / f"s{i}.txt").write_text(f"{cls} {cx:.5f} {cy:.5f} {s / 128:.5f} {s / 96:.5f}\n")


@pytest.mark.slow
def test_train_export_serve_offline(tmp_path: Path):
    sets = tmp_path / "sets"
    _synthetic_set(sets / "synth")
    spec = SourceSpec.from_dict(
        {
            "name": "synth",
            "root": "synth",
            "format": "yolo",
            "images": ["images/*.jpg"],
            "names": ["Fire", "Smoke"],
            "class_map": {"Fire": "fire", "Smoke": "smoke"},
            "licence": "test data",
        }
    )
    built = build_dataset(import_all([spec], sets, load_taxonomy()), tmp_path / "datasets", val_fraction=0.25)
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "_offline_train_script.py"),
            str(tmp_path / "work"),
            str(built.data_yaml),
            str(sets / "synth" / "images" / "s0.jpg"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["attempts"] == [], f"network connections attempted: {out['attempts']}"
    run = json.loads((Path(out["run_dir"]) / "run.json").read_text())
    assert run["dataset"]["version"] == built.version and run["seed"] == 0 and run["wall_time_s"] > 0
    assert run["hardware"]["cpu_count"] and "metrics" in run
    card = out["card"]
    assert card["classes"] == ["fire", "smoke"] and card["input_size"] == [64, 64]
    assert card["data"]["sources"][0]["licence"] == "test data"
    parity = card["metrics"]["parity"]["fp32"]
    assert parity["max_abs_output_diff"] < 1e-2
    assert parity["only_pytorch"] == parity["only_onnx"] == 0
    if parity["matched_boxes"]:
        assert parity["min_iou"] >= 0.98
    model_dir = tmp_path / "work" / "model"
    for name in ("model.onnx", "model.b1.onnx", "model.int8.onnx", "card.json", "README.md"):
        assert (model_dir / name).exists(), name
    meta = {p.key: p.value for p in onnx.load(str(model_dir / "model.onnx")).metadata_props}
    assert json.loads(meta["hazardscan_card"])["classes"] == ["fire", "smoke"]
    dims = onnx.load(str(model_dir / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3 and all(dims[i].dim_param for i in (0, 2, 3))  # dynamic batch and size
    assert card["stride"] == 32
    b1 = onnx.load(str(model_dir / "model.b1.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in b1] == [1, 3, 64, 64]
    assert out["size"] == [128, 96]
