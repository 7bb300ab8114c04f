"""Model cards: the machine-readable card.json every model carries, and its Markdown rendering."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from inference_service.taxonomy import Taxonomy

DEFAULT_NMS_IOU = 0.6  # a release's NMS IoU unless `release --nms-iou` chooses one (measured: README)


def base_card(
    *,
    model_id: str,
    version: str,
    architecture: str,
    classes: list[str],
    input_size: tuple[int, int],
    taxonomy: Taxonomy,
    dataset_card: dict[str, Any] | None,
    run: dict[str, Any],
    conf_threshold: float = 0.25,
    nms_iou: float = DEFAULT_NMS_IOU,
) -> dict[str, Any]:
    zh = {c.name: c.zh for c in taxonomy.detector_classes}
    untrained = [c.name for c in taxonomy.detector_classes if c.name not in classes]
    raisable = [h.id for h in taxonomy.detectable_hazards(classes)]
    sources = (dataset_card or {}).get("sources", [])
    per_source = (dataset_card or {}).get("photos_per_source", {})
    return {
        "model_id": model_id,
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "architecture": architecture,
        "classes": classes,
        "class_names_zh": {c: zh.get(c, c) for c in classes},
        "input_size": list(input_size),
        "conf_threshold": conf_threshold,
        "class_thresholds": {},
        "nms_iou": nms_iou,
        "taxonomy_version": taxonomy.version,
        "detects": classes,
        "cannot_detect": untrained,
        "hazards_raised": raisable,
        "hazards_not_raised": [h.id for h in taxonomy.hazards if h.id not in raisable],
        "hazard_coverage": taxonomy.coverage(classes),
        "data": {
            "dataset_version": (dataset_card or {}).get("version"),
            "photos": (dataset_card or {}).get("photos"),
            "boxes_per_class": (dataset_card or {}).get("boxes_per_class"),
            "sources": [
                {
                    "name": s["name"],
                    "licence": s["licence"],
                    "origin": s["origin"],
                    "photos_train": per_source.get("train", {}).get(s["name"], 0),
                    "photos_val": per_source.get("val", {}).get(s["name"], 0),
                }
                for s in sources
            ],
        },
        "training": {
            "start_weights": run.get("config", {}).get("weights"),
            "hardware": run.get("hardware"),
            "epochs": run.get("epochs_run"),
            "image_size": run.get("train_args", {}).get("imgsz"),
            "wall_time_s": run.get("wall_time_s"),
            "seed": run.get("seed"),
            "config": run.get("config"),
        },
        "metrics": {},
        "licence": "AGPL-3.0 (fine-tuned from Ultralytics weights); training data licences per source above",
    }


def regroup(groups: Sequence[Sequence[str]], classes: Sequence[str], alone: Sequence[str] = ()) -> list[list[str]]:
    """A card's ``label_groups`` for an edited class list: each group keeps its classes that remain, a class in
    no group joins the first, the classes of ``alone`` form a group of their own; ``[]`` for one group."""
    out = [[c for c in g if c in classes and c not in alone] for g in groups] or [[]]
    out[0] += [c for c in classes if c not in alone and not any(c in g for g in out)]
    out.append([c for c in classes if c in alone])
    out = [g for g in out if g]
    return out if len(out) > 1 else []


def coverage_lines(card: dict[str, Any]) -> list[str]:
    """The hazards a card's model raises as detections, as suspicions, only in a declared scene, and not yet."""
    cov = card.get("hazard_coverage")
    if not cov:  # a card written before scenes and suspicions existed
        return [
            f"Hazards it can raise: {', '.join(card['hazards_raised'])}. "
            f"Hazards it cannot raise yet: {', '.join(card['hazards_not_raised'])}."
        ]
    scenes = "; ".join(f"{h} in {' / '.join(s)}" for h, s in cov["need_scene"].items())
    missing = "; ".join(f"{h} (needs {', '.join(c)})" for h, c in cov["cannot_raise"].items())
    return [
        f"- Raised as detections: {', '.join(cov['detections']) or '-'}.",
        f"- Raised as suspicions for the inspector to confirm: {', '.join(cov['suspicions']) or '-'}.",
        f"- Raised only when the photo's scene is declared (`/v1/detect?scene=`, `detect --scene`): {scenes or '-'}.",
        f"- Cannot raise yet: {missing or '-'}.",
    ]


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}" if isinstance(v, int | float) else "–"


def render_markdown(card: dict[str, Any]) -> str:
    m = card.get("metrics", {})
    val = m.get("val", {})
    per_class = val.get("per_class", {})
    lines = [
        f"# {card['model_id']} {card['version']}",
        "",
        f"{card['architecture']} detector, input {card['input_size'][1]}×{card['input_size'][0]}, "
        f"taxonomy {card['taxonomy_version']}, dataset {card['data']['dataset_version']}.",
        "",
        *([f"Derived from {d['model']}: {d['change']} ({d['why']}).", ""] if (d := card.get("derived_from")) else []),
        "## What it detects",
        "",
        "| class | 中文 | AP50 | AP50-95 | threshold | val boxes |",
        "|---|---|---|---|---|---|",
    ]
    val_boxes = (card["data"].get("boxes_per_class") or {}).get("val", {})
    for c in card["classes"]:
        pc = per_class.get(c, {})
        thr = card["class_thresholds"].get(c, card["conf_threshold"])
        lines.append(
            f"| {c} | {card['class_names_zh'].get(c, c)} | {_pct(pc.get('ap50'))} | {_pct(pc.get('ap50_95'))} "
            f"| {thr:.2f} | {val_boxes.get(c, '–')} |"
        )
    lines += [
        "",
        f"Overall on the validation split: mAP50 {_pct(val.get('mAP50'))}, mAP50-95 {_pct(val.get('mAP50-95'))} "
        f"({val.get('source', 'served ONNX pipeline')}).",
        "",
    ]
    if len(card.get("label_groups") or []) > 1:
        groups = "; ".join(", ".join(g) for g in card["label_groups"])
        lines += [f"Label groups (an anchor answers with its best class of each): {groups}.", ""]
    rect = m.get("val_rect")
    if rect:
        lines += [
            "Served with minimum-rectangle inputs (`HAZARDSCAN_RECT=1`; the CCTV scanner's default; a 16:9 frame runs "
            f"at 416×256): mAP50 {_pct(rect.get('mAP50'))}, mAP50-95 {_pct(rect.get('mAP50-95'))}; "
            f"{rect.get('ab_vs_square') or ''}",
            "",
        ]
    lines += _robustness_lines(m.get("robustness"))
    lines += [
        "## What it cannot detect",
        "",
        "Taxonomy classes no shipped model has learned (teach them with labelled photos via Label Studio): "
        + ", ".join(card["cannot_detect"])
        + ".",
        *coverage_lines(card),
        "",
        "## Data",
        "",
        "| source | licence | train photos | val photos | origin |",
        "|---|---|---|---|---|",
    ]
    for s in card["data"]["sources"]:
        lines.append(f"| {s['name']} | {s['licence']} | {s['photos_train']} | {s['photos_val']} | {s['origin']} |")
    t = card["training"]
    hw = t.get("hardware") or {}
    lines += [
        "",
        "## Training",
        "",
        f"From `{t.get('start_weights')}`; {t.get('epochs')} epochs at {t.get('image_size')} px; "
        f"{(t.get('wall_time_s') or 0) / 60:.0f} min on {hw.get('cpu_count')} CPU cores "
        f"({'GPU ' + hw['gpu'] if hw.get('gpu') else 'no GPU'}), torch {hw.get('torch')}, seed {t.get('seed')}.",
        "",
    ]
    for st in t.get("stages", []):
        if st.get("soup"):
            s = st["soup"]
            if "ingredients" in s:
                n, mix = len(s["ingredients"]), " + ".join(f"`{p}`" for p in s["ingredients"])
                lines.append(f"- stage `{st['name']}`: uniform weight average (1/{n} each) of {mix}")
            else:
                lines.append(
                    f"- stage `{st['name']}`: weight average, {1 - s['weight']:g} × `{s['base']}` + "
                    f"{s['weight']:g} × `{s['with']}` (no training; chosen among candidates on the validation split)"
                )
            continue
        lines.append(
            f"- stage `{st['name']}`: from `{st['start_weights']}`, {st['epochs']} epochs at {st['image_size']} px, "
            f"{(st['wall_time_s'] or 0) / 60:.0f} min, {st['torch_threads']} torch thread(s)"
        )
    lines.append("")
    for key, title in (("parity", "Export parity"), ("int8", "int8 variant"), ("operating_points", "Thresholds")):
        if key in m:
            lines += [f"## {title}", "", "```json", _json(m[key]), "```", ""]
    lines += [f"Licence: {card['licence']}.", ""]
    return "\n".join(lines)


def _json(v: Any) -> str:
    import json

    return json.dumps(v, ensure_ascii=False, indent=1)


ROBUSTNESS_CELLS = (
    "photos showing the class that raise it (kept / shown), photos not showing it that raise it (false alarms / "
    "not shown; both only where the photo's source labels the class), and over every photo, alarms of the class "
    "the degradation adds that no label explains (+N)"
)


def robustness_table(report: dict[str, Any]) -> list[str]:
    """Markdown table lines of an ``evaluation.robustness`` report: one row per class, one cell per degradation
    (see :data:`ROBUSTNESS_CELLS`)."""
    names = list(report["degradations"])
    lines = ["| class | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c, cls in enumerate(report["classes"]):
        cells = []
        for name in names:
            t = report["degradations"][name]
            new = f" · +{t['new_alarms'][c]}" if name != "as taken" else ""
            cells.append(f"{t['kept'][c]}/{t['shown'][c]} · {t['false_alarms'][c]}/{t['not_shown'][c]}{new}")
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return lines


def _robustness_lines(rob: dict[str, Any] | None) -> list[str]:
    """The card's section on degraded photos (``evaluation.robustness``)."""
    if not rob:
        return []
    return [
        "## Under degraded photos",
        "",
        f"{rob['photos']} photos of {rob['data']}, each as taken and degraded (`python -m evaluation.robustness`). "
        f"Cells: {ROBUSTNESS_CELLS}.",
        "",
        *robustness_table(rob),
        "",
    ]
