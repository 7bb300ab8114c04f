"""Write the generated sections of the documentation, so that they cannot go stale.

    .venv/bin/python scripts/docs_gen.py           # rewrite every section in place
    .venv/bin/python scripts/docs_gen.py --check   # exit 1 and name the stale sections (tests/test_docs.py)

A section sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->`` in a
Markdown file; everything between the markers is replaced. The sections:

- ``models`` in README.md: what the shipped default model detects and which hazards it can raise, from
  ``models/default/card.json`` and ``datasets/taxonomy.yaml``;
- ``settings`` in docs/operations.md: every ``HAZARDSCAN_*`` setting, from the pydantic settings
  classes of ``inference_service`` (found by their ``env_prefix``) and the variables read directly.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pydantic_settings import BaseSettings  # noqa: E402

from inference_service.taxonomy import Rule, Taxonomy, load_taxonomy  # noqa: E402

PREFIX = "HAZARDSCAN_"
WIDTH = 118  # longest generated line

# Variables read with os.environ instead of a settings class: what each one is for.
DIRECT_VARIABLES: dict[str, str] = {
    "HAZARDSCAN_WEBHOOK_SECRET": "`hazardscan scan`: HMAC-SHA256 key for the webhook's `X-Hazardscan-Signature` "
    "(the `--webhook-secret` default)",
}
# Settings fields without a description of their own.
FALLBACK_DESCRIPTIONS: dict[str, str] = {
    "max_batch_images": "most photos in one `/v1/detect/batch` request",
    "evidence_max_side": "longest side of an evidence JPEG, in pixels",
    "evidence_quality": "JPEG quality of evidence images",
    "deadline_days_high": "较大隐患 rectification deadline, in days",
    "deadline_days_medium": "一般隐患 rectification deadline, in days",
    "deadline_days_low": "较小隐患 rectification deadline, in days",
}


# --- settings ---------------------------------------------------------------------------------------------


def _settings_classes() -> Iterator[type[BaseSettings]]:
    """Every BaseSettings subclass in inference_service whose env_prefix is HAZARDSCAN_, in file order."""
    for path in sorted((REPO / "inference_service").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if f'env_prefix="{PREFIX}"' not in source:
            continue
        module = importlib.import_module(".".join(path.relative_to(REPO).with_suffix("").parts))
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef):
                cls = getattr(module, node.name, None)
                if isinstance(cls, type) and issubclass(cls, BaseSettings):
                    yield cls


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(REPO)}`"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
        return f"{value:,} ({value // (1024 * 1024)} MiB)"
    if isinstance(value, int) and value >= 10_000:
        return f"{value:,}"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _direct_variables() -> dict[str, str]:
    """HAZARDSCAN_* variables the code reads with os.environ, and the file that reads each."""
    found: dict[str, str] = {}
    pattern = re.compile(r"os\.environ\.get\(\s*\"(HAZARDSCAN_[A-Z0-9_]+)\"")
    for path in sorted((REPO / "inference_service").rglob("*.py")):
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, str(path.relative_to(REPO)))
    return found


def settings_rows() -> list[tuple[str, str, str]]:
    rows: dict[str, tuple[str, str, str]] = {}
    for cls in _settings_classes():
        for name, field in cls.model_fields.items():
            var = PREFIX + name.upper()
            if var in rows:
                continue
            what = field.description or FALLBACK_DESCRIPTIONS.get(name, "")
            rows[var] = (var, _default(field.get_default(call_default_factory=True)), what)
    for var, where in _direct_variables().items():
        if var not in rows:
            rows[var] = (var, "unset", DIRECT_VARIABLES.get(var, f"read by `{where}`"))
    return list(rows.values())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_section() -> str:
    lines = ["| variable | default | what it sets |", "|---|---|---|"]
    lines += [f"| `{var}` | {_cell(default)} | {_cell(what)} |" for var, default, what in settings_rows()]
    return "\n".join(lines)


# --- the shipped model --------------------------------------------------------------------------------


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, break_on_hyphens=False, break_long_words=False)


def _when(rules: list[Rule]) -> str:
    """When a hazard is raised, from the rules the model can use."""
    if any(not r.scene and not r.suspected for r in rules):
        return "always"
    parts = []
    for r in rules:
        where = " or ".join(f"`{x}`" for x in r.scene)
        parts.append(("suspicion" + (f", scene {where}" if where else "")) if r.suspected else f"scene {where}")
    return "; ".join(dict.fromkeys(parts))


def models_section(model_dir: Path | None = None, taxonomy: Taxonomy | None = None) -> str:
    model_dir = model_dir or REPO / "models" / "default"
    taxonomy = taxonomy or load_taxonomy()
    card = json.loads((model_dir / "card.json").read_text(encoding="utf-8"))
    classes: list[str] = card["classes"]
    known = set(classes)
    val = card.get("metrics", {}).get("val", {})
    per_class = val.get("per_class", {})
    coverage = taxonomy.coverage(classes)
    missing = [taxonomy.hazard(h) for h in coverage["cannot_raise"]]
    raised = [h for h in taxonomy.hazards if h.id not in coverage["cannot_raise"]]
    lines = [
        *_wrap(
            f"The shipped model is **{card['model_id']} {card['version']}** ({card.get('architecture', 'detector')}, "
            f"{card['input_size'][1]} px, [model card](models/{model_dir.resolve().name}/README.md)). "
            f"It raises **{len(raised)} of the {len(taxonomy.hazards)} hazards** of the taxonomy; some only when the "
            "photo's scene is given (`?scene=` in the API, the inspection's scene in the app, `scene:` of a camera), "
            "and a *suspicion* always waits for an inspector to confirm it:"
        ),
        "",
        "| hazard | 隐患 | severity | raised from | when | AP50 |",
        "|---|---|---|---|---|---|",
    ]
    for h in raised:
        usable = [r for r in h.rules if r.raisable_by(known)]
        anchors = list(dict.fromkeys(c for r in usable for c in r.when if c in known))
        ap = "/".join(f"{per_class[c]['ap50']:.2f}" for c in anchors if c in per_class) or "–"
        lines.append(
            f"| {h.id} {h.name_en} | {h.name_zh} | {h.severity} | "
            f"{', '.join(f'`{c}`' for c in anchors)} | {_when(usable)} | {ap} |"
        )
    lines.append("")
    used = {c for h in raised for r in h.rules if r.raisable_by(known) for c in (*r.when, *r.with_, *r.without)}
    others = [c for c in classes if c not in used]
    if "mAP50" in val:
        lines += _wrap(
            f"AP50: on the model's validation photos (mAP50 {val['mAP50']:.3f} over its {len(classes)} classes), a "
            "measure of boxes, not a promise about your photos."
            + (f" Its other classes ({', '.join(others)}) show in `detections` only." if others else "")
        )
        lines.append("")
    if missing:
        lines += [
            f"It **cannot raise** the other {len(missing)} yet: they need classes no shipped model detects. "
            "Inspectors add them by hand",
            "in the app, and their boxes become training data ([ML guide](docs/ml.md#the-feedback-loop)); "
            "`hazardscan teach`",
            "then adds the class to a copy of the model in one command; with `--keep-others` or `--branch` the "
            "classes it",
            "already had keep their mAP50 within half a point ([teach a new hazard](docs/ml.md#teach-a-new-hazard)).",
            "",
            "| hazard | 隐患 | needs |",
            "|---|---|---|",
        ]
        for h in missing:
            needs = coverage["cannot_raise"][h.id]
            lines.append(f"| {h.id} {h.name_en} | {h.name_zh} | {', '.join(f'`{c}`' for c in needs)} |")
    return "\n".join(lines)


# --- files --------------------------------------------------------------------------------------------

SECTIONS: dict[str, tuple[Path, Callable[[], str]]] = {
    "models": (REPO / "README.md", models_section),
    "settings": (REPO / "docs" / "operations.md", settings_section),
}


def _span(text: str, name: str) -> tuple[int, int] | None:
    begin = f"<!-- BEGIN generated: {name} -->\n"
    end = f"<!-- END generated: {name} -->"
    start = text.find(begin)
    stop = text.find(end, start + 1) if start >= 0 else -1
    return None if start < 0 or stop < 0 else (start + len(begin), stop)


def rendered(name: str) -> tuple[Path, str, str | None]:
    """``(file, current text, text with the section regenerated)``; None when the file lacks the markers."""
    path, make = SECTIONS[name]
    text = path.read_text(encoding="utf-8")
    span = _span(text, name)
    if span is None:
        return path, text, None
    return path, text, text[: span[0]] + make() + "\n" + text[span[1] :]


def stale_sections() -> list[str]:
    """Names of the sections whose file differs from what would be generated (or lacks the markers)."""
    stale = []
    for name in SECTIONS:
        _, text, new = rendered(name)
        if new is None:
            stale.append(f"{name} (no markers)")
        elif new != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale sections (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = stale_sections()
    if args.check:
        for name in stale:
            sys.stderr.write(f"stale: {name}\n")
        return 1 if stale else 0
    status = 0
    for name in SECTIONS:
        path, text, new = rendered(name)
        if new is None:
            sys.stderr.write(f"{path.relative_to(REPO)}: no markers for the generated section {name!r}\n")
            status = 1
        elif new != text:
            path.write_text(new, encoding="utf-8")
            sys.stdout.write(f"wrote {name} in {path.relative_to(REPO)}\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
