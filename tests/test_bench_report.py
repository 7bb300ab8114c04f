"""The benchmarks' printed reports are pure functions of their measurements."""

from __future__ import annotations

from typing import Any

from evaluation.bench_service import report
from evaluation.bench_video import summary_line


def test_service_report_gives_medians_and_paired_ratios():
    stages = [{"decode": 5.0, "infer": 10.0}, {"decode": 7.0, "infer": 12.0}, {"decode": 6.0, "infer": 11.0}]
    frame: dict[str, list[Any]] = {
        "bare": [10.0, 20.0, 10.0],  # each request pairs with the faster of this and its own session run: 10, 12, 10
        "svc": [15.0, 20.0, 12.0],
        "raw": [14.0, 18.0, 11.0],
        "ul": [],
        "floor": [5.0, 5.0, 5.0],
        "floor_s": [6.0, 6.0, 6.0],
        "transport": [1.0, 1.0, 1.0],
        "earlier": [],
        "stages": stages,
        "raw_stages": stages,
    }
    phone: dict[str, list[Any]] = {
        **frame,
        "ul": [50.0, 60.0, 55.0],
        "earlier": [30.0, 36.0, 32.0],
        "loop": [("form", 3.5), ("body", 2.25)],
        "lean": [13.0, 16.0, 10.0],
        "lean_transport": [0.5, 0.5, 0.5],
        # its own session runs: 8, 12, 10 against bare 10, 20, 10 -> 8, 12, 10
        "lean_stages": [{"decode": 5.0, "infer": 8.0}, {"decode": 7.0, "infer": 12.0}, {"decode": 6.0, "infer": 10.0}],
    }
    sizes, scales = {"frame.jpg": 0.8, "phone.jpg": 4.6}, {"frame.jpg": 4, "phone.jpg": 8}
    lines = report({"frame.jpg": frame, "phone.jpg": phone}, sizes, scales)
    # medians; ratios are medians of per-round pairs (15/10, 20/20, 12/10 -> 1.2), not ratios of medians
    assert lines[1].split() == ["frame.jpg", "0.8", "10.0", "15.0", "14.0", "-", "1.20x", "-", "1.60x"]
    # against (floor at the needed scale + the round's fastest session): 15/16, 20/18, 12/16 -> 0.94; the body
    # 14/16, 18/18, 11/16 -> 0.88; against the 1/8 floor 15/15, 20/17, 12/15 -> 1.00 and 0.93
    row = next(line for line in lines if line.startswith("  frame.jpg") and "1/4" in line)
    assert row.split() == ["frame.jpg", "1/4", "6.0", "ms", "0.94x", "0.88x", "5.0", "ms", "1.00x", "0.93x"]
    assert any(line.endswith("body / (floor + bare + transport) 0.82x") for line in lines)  # 14/17, 18/19, 11/17
    assert "earlier" not in " ".join(lines) and not any("--compare-root" in line for line in lines)
    # the lean client only where every photo has it
    assert not any("lean client" in line for line in lines)
    frame |= {"lean": [14.0, 18.0, 12.0], "lean_transport": [1.0, 1.0, 1.0], "lean_stages": stages}
    lines = report({"frame.jpg": frame, "phone.jpg": phone}, sizes, scales)
    # 13/14, 16/18, 10/16 -> 0.89; with transport 13/14.5, 16/18.5, 10/16.5 -> 0.86
    lean = next(line for line in lines if line.startswith("  phone.jpg") and "transport" in line and "13.0 ms" in line)
    assert lean.split()[-1] == "0.86x" and "body / (floor + bare) 0.89x" in lean
    # rest: each request's total less its stages, median (body 14-15, 18-19, 11-17 -> -1; lean 13-13, 16-19, 10-16)
    assert lines[-2] == "  phone.jpg        body decode 6.0  infer 11.0  rest -1.0"
    assert lines[-1] == "  phone.jpg        lean decode 6.0  infer 10.0  rest -3.0"
    at = next(i for i, line in enumerate(lines) if line.startswith("event-loop CPU per request"))
    assert lines[at + 1].split() == ["frame.jpg"]  # not measured for it
    assert lines[at + 2].split() == ["phone.jpg", "form", "3.50", "body", "2.25"]


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
