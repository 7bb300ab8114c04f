"""The same scan on a local Ray instance (2 CPUs): cameras split across actors, one model per actor."""

from __future__ import annotations

import datetime as dt

import pytest
from _cctv import RED_CELL, write_video

from inference_service.cctv.config import parse_cameras
from inference_service.cctv.ray_engine import partition, run_on_ray
from inference_service.cctv.scanner import ListSink

pytestmark = pytest.mark.slow
T0 = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def test_ray_engine_splits_cameras_and_finds_every_occurrence(tiny_model_dir, taxonomy, tmp_path):
    ray = pytest.importorskip("ray")
    video = write_video(tmp_path / "v.avi", seconds=4, fps=10, shows=[(0.5, 1.5, RED_CELL), (2.5, 3.5, RED_CELL)])
    config = parse_cameras(
        {
            "defaults": {"events": {"persistence_s": 0.3, "close_after_s": 0.5, "cooldown_s": 0}},
            "cameras": [{"id": f"cam-{i}", "url": str(video), "start_time": T0.isoformat()} for i in range(3)],
        }
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        sink = ListSink()
        report = run_on_ray(config, tiny_model_dir, taxonomy, sink, address="auto", threads_per_worker=1)
    finally:
        ray.shutdown()
    assert report["engine"] == "ray" and report["workers"] == 2  # 3 cameras on 2 single-CPU actors
    assert sorted(report["cameras"]) == ["cam-0", "cam-1", "cam-2"] and report["frames"] == 120
    opened = sorted(
        (e.camera_id, round(e.started_at - T0.timestamp(), 3)) for kind, e in sink.items if kind == "opened"
    )
    assert opened == [(f"cam-{i}", t) for i in range(3) for t in (0.5, 2.5)]  # both fires on every camera
    assert all(e.evidence_jpeg for _, e in sink.items)


@pytest.mark.parametrize(
    ("items", "parts", "expected"),
    [
        ([1, 2, 3, 4, 5], 2, [[1, 3, 5], [2, 4]]),
        ([1, 2], 8, [[1], [2]]),  # never an empty part
        ([1], 0, [[1]]),
        ([], 3, []),
    ],
)
def test_partition(items, parts, expected):
    assert partition(items, parts) == expected
