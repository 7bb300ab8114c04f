"""``hazardscan demo-photo``: the project's own picture to try the service with."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from inference_service import cli
from inference_service.runtime import Detector
from inference_service.scan import Scanner, ScanOptions
from inference_service.taxonomy import Taxonomy

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"


def test_demo_photo_is_a_jpeg_of_the_asked_size_and_the_same_every_time(tmp_path: Path):
    assert cli.main(["demo-photo", str(tmp_path / "a.jpg")]) == 0
    assert cli.main(["demo-photo", str(tmp_path / "sub" / "b.jpg")]) == 0  # the folder is made
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "sub" / "b.jpg").read_bytes()
    with Image.open(tmp_path / "a.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (800, 600))
    assert cli.main(["demo-photo", str(tmp_path / "c.jpg"), "--width", "320", "--height", "240"]) == 0
    with Image.open(tmp_path / "c.jpg") as image:
        assert image.size == (320, 240)


def test_bad_sizes_and_unwritable_places_are_one_line_errors(tmp_path: Path, capsys):
    assert cli.main(["demo-photo", str(tmp_path / "x.jpg"), "--width", "10"]) == 2
    assert "between 64 and 8000" in capsys.readouterr().err
    (tmp_path / "file").write_text("a file, not a folder")
    assert cli.main(["demo-photo", str(tmp_path / "file" / "x.jpg")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_shipped_model_raises_open_fire_on_it(tmp_path: Path, taxonomy: Taxonomy):
    """The README's first curl shows FIRE-001 on this picture: a new default model must keep that true."""
    assert cli.main(["demo-photo", str(tmp_path / "demo.jpg")]) == 0
    scanner = Scanner(Detector.load(DEFAULT_MODEL, threads=1), taxonomy)
    scan = scanner.scan((tmp_path / "demo.jpg").read_bytes(), ScanOptions())
    assert [f.hazard_id for f in scan.findings] == ["FIRE-001"] and scan.warnings == []
