from __future__ import annotations

import io
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _builders import encode, noisy_photo, scene
from PIL import Image

from inference_service import evidence
from inference_service.evidence import SEVERITY_COLOURS, Annotation, annotations_for, find_cjk_font, render_evidence
from inference_service.imaging import DecodedImage
from inference_service.scan import Scanner, ScanOptions

RED = (255, 0, 0)


def _decoded(w: int, h: int) -> DecodedImage:
    return DecodedImage.from_array(np.asarray(scene(w, h, [])))


def test_draws_boxes_and_caps_the_long_side():
    boxes = [Annotation((100, 100, 900, 500), "Open fire 97%", "现场明火 Open fire 97%", (220, 20, 60))]
    jpeg = render_evidence(_decoded(2000, 1000), boxes, max_side=1000, quality=85)
    out = Image.open(io.BytesIO(jpeg))
    assert out.format == "JPEG" and out.size == (1000, 500)
    edge = np.asarray(out)[250, 47:55].astype(int)  # left edge of the box, scaled by 1/2
    assert (edge[:, 0] - edge[:, 1]).max() > 100


def test_small_photos_are_not_upscaled():
    jpeg = render_evidence(_decoded(300, 200), [], max_side=1600)
    assert Image.open(io.BytesIO(jpeg)).size == (300, 200)


def test_cjk_font_is_found(tmp_path: Path):
    assert find_cjk_font(evidence.DEFAULT_FONT) == evidence.DEFAULT_FONT or find_cjk_font(tmp_path / "x") is None


def test_without_cjk_font_labels_fall_back_to_english_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
):
    def no_fontconfig(*args, **kwargs):
        raise OSError("fc-match not installed")

    monkeypatch.setattr(subprocess, "run", no_fontconfig)
    find_cjk_font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="inference_service.evidence"):
            for _ in range(3):
                jpeg = render_evidence(
                    _decoded(200, 100),
                    [Annotation((10, 30, 90, 90), "fire", "明火 fire", RED)],
                    font_path=tmp_path / "missing.ttc",
                )
                assert Image.open(io.BytesIO(jpeg)).size == (200, 100)
        assert sum("English only" in r.message for r in caplog.records) == 1
    finally:
        find_cjk_font.cache_clear()


def test_annotations_put_hazards_first_with_severity_colour(scanner: Scanner):
    photo = encode(scene(256, 256, [(128, 64, 192, 128, RED), (0, 0, 64, 64, (0, 255, 0))]), "PNG")
    scan = scanner.scan(photo, ScanOptions(evidence=True))
    notes = annotations_for(scan.detect, scan.findings, scanner.detector.card.classes, scanner.class_zh)
    assert [f.hazard_id for f in scan.findings] == ["FIRE-001", "FIRE-002"]
    assert notes[0].colour == SEVERITY_COLOURS["critical"] and notes[0].label_zh.startswith("现场明火")
    assert len(notes) == 2  # both detections raised a hazard: no separate detection boxes
    assert Image.open(io.BytesIO(scan.evidence_jpeg)).size == (256, 256)


def test_evidence_of_a_large_photo_is_drawn_at_the_capped_size_not_the_model_scale(scanner: Scanner):
    photo = np.asarray(noisy_photo(2048, 1536), np.uint8) // 4 + 96
    photo[512:1024, 512:1024] = RED
    scan = scanner.scan(encode(Image.fromarray(photo), "JPEG", quality=85), ScanOptions(evidence=True))
    assert scan.detect.image.array.shape == (192, 256, 3)  # the detector decoded at 1/8
    assert Image.open(io.BytesIO(scan.evidence_jpeg)).size == (1600, 1200)
