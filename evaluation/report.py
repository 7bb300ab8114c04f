"""The evaluation report: ``report.json`` (every figure, for machines) and ``report.md`` (for people),
rendered from that same document so the two never disagree."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCHEMA = "hazardscan-eval/1"


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_f(v) if not isinstance(v, str) else v for v in row) + " |" for row in rows]
    return [*out, ""]


def _img(rel: str | None, alt: str) -> str:
    return f"![{alt}]({rel})" if rel else ""


def _headline(doc: dict[str, Any]) -> list[str]:
    m, d, o = doc["model"], doc["data"], doc["overall"]
    lines = [
        f"# Evaluation: {m['model_id']} {m['version']} on {d['name']}",
        "",
        f"Model `{m['path']}` · data `{d['path']}` ({d['format']}, split {d['split']}) · {o['photos']} photos, "
        f"{o['gt_boxes']} labelled boxes, {o['classes_scored']} classes scored · created {doc['created']}",
        "",
    ]
    if doc.get("ab"):
        lines += [f"**{doc['ab']['line']}**", ""]
    lines += _table(
        ["mAP50", "mAP50-95", "precision", "recall", "F1"],
        [[o["map50"], o["map50_95"], o["precision"], o["recall"], o["f1"]]],
    )
    lines.append(
        "mAP from pycocotools (bbox, area all, maxDets 100; classes without ground truth left out). Precision, "
        "recall and F1 at the card's operating thresholds, IoU 0.5, micro-averaged over boxes."
        + (
            " Federated scoring: a prediction of a class on a photo whose source never labels that class is not "
            f"scored; scoring every prediction (as Ultralytics does) gives mAP50 {_f(o.get('map50_all_predictions'))}"
            f", mAP50-95 {_f(o.get('map50_95_all_predictions'))}."
            if o.get("federated")
            else ""
        )
    )
    lines.append("")
    if d.get("dropped_gt"):
        lines += [f"Ground truth of classes the model does not have (not scored): {d['dropped_gt']}", ""]
    return lines


def _per_class(doc: dict[str, Any]) -> list[str]:
    figs = doc.get("figures", {})
    ops = (doc.get("operating_points") or {}).get("per_class", {})
    rows = []
    for c in doc["per_class"]:
        op = ops.get(c["class"], {})
        chosen = op.get("threshold")
        rows.append(
            [
                c["class"],
                c["gt"],
                c["ap50"],
                c["ap50_95"],
                c["threshold"],
                c["precision"],
                c["recall"],
                c["f1"],
                c["fp"],
                c["fn"],
                f"{c.get('unscored_boxes', 0)} ({c.get('unscored_photos', 0)})",
                _f(chosen) if chosen is not None else (op.get("note") or "–"),
            ]
        )
    lines = ["## Per class", ""]
    lines += _table(
        ["class", "gt boxes", "AP50", "AP50-95", "threshold", "P", "R", "F1", "FP", "missed",
         "unscored boxes (photos)", "chosen threshold"],
        rows,
    )  # fmt: skip
    if any(c.get("unscored_boxes") for c in doc["per_class"]):
        lines += [
            "*Unscored boxes*: detections at the threshold on photos whose source never labels that class. "
            "Federated scoring leaves them out; in service each is a false alarm or an object nobody labelled "
            "(see the partial-label audit).",
            "",
        ]
    if figs.get("pr_overview"):
        lines += [_img(figs["pr_overview"], "PR curves"), ""]
    pr = figs.get("pr", {})
    if pr:
        cells = [_img(v, k) for k, v in pr.items()]
        width = min(4, len(cells))
        cells += [""] * (-len(cells) % width)
        lines += ["|" + " |" * width, "|" + "---|" * width]
        lines += ["| " + " | ".join(cells[i : i + width]) + " |" for i in range(0, len(cells), width)]
        lines.append("")
    return lines


def _operating(doc: dict[str, Any]) -> list[str]:
    ops = doc.get("operating_points")
    if not ops:
        return []
    lines = [
        "## Operating points",
        "",
        f"Goal **{ops['goal']}**, chosen on {ops['chosen_on']['data']} ({ops['chosen_on']['photos']} photos). "
        "Figures at the chosen thresholds are measured on the same photos they were chosen on, so they are "
        "optimistic." + (f" Written into `{ops['written_to']}`." if ops.get("written_to") else " Not written."),
        "",
    ]
    rows = []
    for k, v in ops["per_class"].items():
        unscored = f"{v.get('unscored_boxes', 0)} ({v.get('unscored_photos', 0)})"
        note = v["note"] or ("met" if v["met"] else "not met")
        rows.append([k, v["threshold"], v["precision"], v["recall"], v["f1"], unscored, note])
    return lines + _table(["class", "threshold", "P", "R", "F1", "unscored boxes (photos)", "note"], rows)


def _sources(doc: dict[str, Any]) -> list[str]:
    rows = [[s, v["photos"], v["gt"], v["map50"], v["map50_95"]] for s, v in doc["per_source"].items()]
    return ["## Per source set", "", *_table(["source", "photos", "gt boxes", "mAP50", "mAP50-95"], rows)]


def _hazards(doc: dict[str, Any]) -> list[str]:
    h = doc["hazards"]
    a = h["any"]
    lines = [
        "## Hazards (photo level, at operating thresholds)",
        "",
        f"Of {a['photos_with_hazard']} photos with a hazard, {a['flagged_any_hazard']} were flagged "
        f"({_pct(a['flag_rate'])}), {a['flagged_same_hazard']} with the right hazard ({_pct(a['same_hazard_rate'])}). "
        f"Of {a['photos_without_hazard']} photos without a hazard, {a['false_alarms']} raised a false alarm "
        f"({_pct(a['false_alarm_rate'])}).",
        "",
    ]
    rows = [
        [
            k,
            v["name_en"],
            v["severity"],
            v["photos_with"],
            v["flagged"],
            _pct(v["flag_rate"]),
            v["photos_without"],
            v["false_alarms"],
            _pct(v["false_alarm_rate"]),
        ]
        for k, v in h["per_hazard"].items()
    ]
    return lines + _table(
        [
            "hazard",
            "name",
            "severity",
            "photos with",
            "flagged",
            "flag rate",
            "photos without",
            "false alarms",
            "false-alarm rate",
        ],
        rows,
    )


def _errors(doc: dict[str, Any]) -> list[str]:
    figs = doc.get("figures", {})
    lines = ["## Errors", "", _img(figs.get("confusion"), "confusion matrix"), ""]
    sheets = figs.get("sheets", {})
    if sheets:
        lines += ["Worst boxes per class (red: false positive, green: ground truth, orange: the model's boxes):", ""]
        for cls, s in sheets.items():
            links = [f"[{label}]({s[k]})" for k, label in (("fp", "false positives"), ("miss", "misses")) if s.get(k)]
            lines.append(f"- **{cls}**: " + " · ".join(links))
        lines.append("")
    return lines


def _speed(doc: dict[str, Any]) -> list[str]:
    sp = doc.get("speed")
    if not sp:
        return []
    rows = []
    for variant, v in sp["variants"].items():
        s, b = v.get("served", {}).get("total", {}), v.get("bare", {})
        infer = v.get("served", {}).get("infer", {})
        ms = [_f(x, 1) for x in (b.get("p50"), infer.get("p50"), s.get("p50"), s.get("p90"), s.get("mean"))]
        rows.append([variant, v.get("map50"), v.get("map50_95"), *ms])
    m = sp["machine"]
    return [
        "## Speed",
        "",
        f"Per photo, milliseconds, {m['cpu_count']} CPU threads, load average {m['loadavg_1m']} at the end of the run "
        "(other work on the machine inflates these). Served = decode + letterbox + session + NMS + thresholds.",
        "",
        *_table(
            [
                "variant",
                "mAP50",
                "mAP50-95",
                "bare session p50",
                "served: session p50",
                "served p50",
                "served p90",
                "served mean",
            ],
            rows,
        ),
    ]


def _crosscheck(doc: dict[str, Any]) -> list[str]:
    x = doc.get("crosscheck")
    if not x:
        return []
    if x.get("error"):
        return ["## Cross-check with Ultralytics", "", f"Not run: {x['error']}", ""]
    lines = [
        "## Cross-check with Ultralytics",
        "",
        f"Ultralytics {x['ultralytics_version']} `val` on the same photos and labels: "
        f"mAP50 **{_f(x['ultralytics_map50'])}** vs ours {_f(x['ours_map50'])} "
        "(all predictions scored, as Ultralytics does): difference "
        f"{100 * x['difference']:+.2f} points, {'within' if x['within_tolerance'] else 'outside'} the 1-point "
        f"tolerance. On identical predictions the two metric implementations differ by "
        f"{100 * x['metric_difference']:+.2f} points; with Ultralytics' validation choices emulated on our side "
        f"{100 * x['unexplained']:+.2f} points stay unexplained. The rest is the served pipeline itself (what "
        "inspectors get), not a scoring error:",
        "",
        *_table(["step", "mAP50", "mAP50-95"], [[st["step"], st["map50"], st["map50_95"]] for st in x["steps"]]),
        "Where the difference comes from, rung by rung:",
        "",
    ]
    lines += [f"- {e}" for e in x["explanation"]]
    return [*lines, ""]


def _ab(doc: dict[str, Any]) -> list[str]:
    ab = doc.get("ab")
    if not ab:
        return []
    rows = [
        [
            c,
            d["current"],
            d["candidate"],
            f"{100 * d['diff']:+.1f}",
            f"[{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]",
        ]
        for c, d in ab["per_class"].items()
    ]
    m = ab["map50"]
    gate = ab.get("gate_classes") or list(ab["per_class"])
    rows = [[f"{r[0]}{'' if r[0] in gate else ' (not gated: few boxes)'}", *r[1:]] for r in rows]
    rows.append(
        [
            "**mAP50**" if len(gate) == len(ab["per_class"]) else "**mAP50 of gated classes**",
            m["current"],
            m["candidate"],
            f"{100 * m['diff']:+.1f}",
            f"[{100 * m['ci'][0]:+.1f}, {100 * m['ci'][1]:+.1f}]",
        ]
    )
    return [
        "## A/B against the current model",
        "",
        f"Current `{doc['baseline']['path']}` vs candidate `{doc['model']['path']}`: paired bootstrap over "
        f"{ab['photos']} photos, {ab['resamples']} resamples, {ab['confidence']:.0%} intervals, margin "
        f"{100 * ab['margin']:.1f} points (AP50 in points).",
        "",
        f"**{ab['line']}**",
        "",
        *_table(["class", "current AP50", "candidate AP50", "diff", "CI"], rows),
    ]


def render_markdown(doc: dict[str, Any]) -> str:
    parts = [_headline(doc), _per_class(doc), _operating(doc), _sources(doc), _hazards(doc), _errors(doc)]
    parts += [_speed(doc), _crosscheck(doc), _ab(doc)]
    issues = doc["data"].get("issues", [])
    if issues:
        parts.append(["## Data issues", "", *(f"- {i}" for i in issues[:50]), ""])
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def write_report(out_dir: Path, doc: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"schema": SCHEMA, **doc}
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(doc, ensure_ascii=False, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(doc), encoding="utf-8")
    return json_path, md_path
