"""The benchmarks' printed reports are pure functions of their measurements."""

from __future__ import annotations

from evaluation.bench_service import report
from evaluation.bench_video import summary_line


def test_service_report_gives_medians_and_paired_ratios():
    stages = [{"decode": 5.0, "infer": 10.0}, {"decode": 7.0, "infer": 12.0}, {"decode": 6.0, "infer": 11.0}]
    samples = {
        "frame.jpg": {"bare": [10.0, 20.0, 10.0], "svc": [15.0, 20.0, 12.0], "ul": [], "floor": [5.0, 5.0, 5.0]},
        "phone.jpg": {"bare": [10.0, 10.0, 10.0], "svc": [30.0, 40.0, 35.0], "ul": [50.0, 60.0, 55.0]},
    }
    samples["phone.jpg"]["floor"] = [30.0, 30.0, 30.0]
    for got in samples.values():
        got["stages"] = stages
    lines = report(samples, {"frame.jpg": 0.8, "phone.jpg": 4.6})
    frame, phone = lines[1].split(), lines[2].split()
    # ratios are medians of per-run pairs (1.5, 1.0, 1.2 -> 1.2), not ratios of medians (15 / 10)
    # last column: service against (floor + bare), pair by pair (15/15, 20/25, 12/15 -> 0.8)
    assert frame == ["frame.jpg", "0.8", "10.0", "15.0", "-", "1.20x", "-", "1.50x", "0.80x"]
    assert phone == ["phone.jpg", "4.6", "10.0", "35.0", "55.0", "3.50x", "5.50x", "4.00x", "0.88x"]
    assert lines[4].endswith("frame.jpg 5.0  phone.jpg 30.0")
    assert lines[-1] == "  phone.jpg        decode 6.0  infer 11.0"


def test_video_summary_line_names_the_event_count_check():
    entry = {
        "ours_fps": {"a": [100.0]},
        "ultralytics_fps": {"b": [80.0]},
        "ratio_vs_best_ultralytics": 1.25,
        "ratio_vs_default_ultralytics": 1.6,
        "agreement": 1.0,
        "matched": 874,
    }
    best = {"frames": 500, "events": [{}] * 4}
    assert summary_line("m", entry, best, 5).endswith(
        "ratio 1.25× (vs its default 1.60×)  agreement 100.0% (874 matched)  events 4"
    )
    entry |= {"events_expected": 5, "events_match": False}
    assert summary_line("m", entry, best, 5).endswith("events 4 (known 5: MISMATCH)")
