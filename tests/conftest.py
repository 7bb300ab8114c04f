"""Shared fixtures: a tiny YOLO-contract ONNX model built with the ``onnx`` helper API, and photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _builders import build_model_dir

from inference_service.runtime import Detector
from inference_service.scan import Scanner
from inference_service.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="session", autouse=True)
def data_dir_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Services a test starts keep the inspector app's database and photos in a temporary folder, not in the
    checkout's ``data/`` (where a database left by another version of the code broke the app's storage)."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("data")
        mp.setenv("HAZARDSCAN_DATA_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``models/tiny/`` with ``model.onnx`` (64×64 input, dynamic batch) and ``card.json``."""
    return build_model_dir(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def detector(tiny_model_dir: Path) -> Detector:
    return Detector.load(tiny_model_dir, threads=1)


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def scanner(detector: Detector, taxonomy: Taxonomy) -> Scanner:
    return Scanner(detector, taxonomy)
