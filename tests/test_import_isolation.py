"""The serving path (API app, CLI, one real detect) never imports torch, ultralytics or onnx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _builders import encode, scene

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "ultralytics", "onnx", "matplotlib", "training")

SCRIPT = """
import json, sys
import inference_service.cli as cli
from fastapi.testclient import TestClient
from inference_service.api.app import create_app
from inference_service.api.settings import Settings

app = create_app(Settings(model_path=sys.argv[1], threads=1, public_routes="/v1/*"))  # not about keys
with TestClient(app) as client:
    r = client.post("/v1/detect", files={"photo": ("a.png", open(sys.argv[2], "rb").read())}, params={"evidence": "1"})
    assert r.status_code == 200 and r.json()["hazards"], r.text
assert cli.main(["detect", sys.argv[2], "--model", sys.argv[1], "--json"]) == 0
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
"""


def test_serving_never_imports_torch_or_ultralytics(tiny_model_dir: Path, tmp_path: Path):
    photo = tmp_path / "fire.png"
    photo.write_bytes(encode(scene(256, 256, [(128, 64, 192, 128, (255, 0, 0))]), "PNG"))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT % (HEAVY,), str(tiny_model_dir), str(photo)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
