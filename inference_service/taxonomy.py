"""Hazard taxonomy (versioned data in ``datasets/taxonomy.yaml``) and the rules that raise hazards
from the detections of one photo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from inference_service.detections import Detections

Severity = Literal["critical", "high", "medium", "low"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}

_PACKAGED = Path(__file__).parent / "_data" / "taxonomy.yaml"
_REPO = Path(__file__).resolve().parent.parent / "datasets" / "taxonomy.yaml"


class TaxonomyError(ValueError):
    """The taxonomy file is missing or malformed; the message names the entry."""


@dataclass(frozen=True)
class Rule:
    when: tuple[str, ...]
    with_: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    scope: Literal["overlap", "photo"] = "overlap"
    min_overlap: float = 0.3


@dataclass(frozen=True)
class Hazard:
    id: str
    name_zh: str
    name_en: str
    domain: str
    severity: Severity
    legal_basis: str
    advice_zh: str
    rule: Rule
    advice_en: str = ""


@dataclass(frozen=True)
class DetectorClass:
    name: str
    zh: str
    trained_by_default_model: bool


@dataclass(frozen=True)
class HazardFinding:
    hazard_id: str
    name_zh: str
    name_en: str
    domain: str
    severity: str
    legal_basis: str
    advice_zh: str
    confidence: float
    box: tuple[float, float, float, float] | None
    detection_indices: tuple[int, ...] = field(default_factory=tuple)
    advice_en: str = ""


def _ioa(anchor: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Share of each anchor box (N,4) covered by each other box (M,4), and vice versa: max of both."""
    lt = np.maximum(anchor[:, None, :2], others[None, :, :2])
    rb = np.minimum(anchor[:, None, 2:], others[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(anchor[:, 2:] - anchor[:, :2], 1e-9, None).prod(axis=1)
    area_o = np.clip(others[:, 2:] - others[:, :2], 1e-9, None).prod(axis=1)
    return np.maximum(inter / area_a[:, None], inter / area_o[None, :])


@dataclass(frozen=True)
class Taxonomy:
    version: str
    detector_classes: tuple[DetectorClass, ...]
    hazards: tuple[Hazard, ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.detector_classes)

    def hazard(self, hazard_id: str) -> Hazard:
        for h in self.hazards:
            if h.id == hazard_id:
                return h
        raise KeyError(f"unknown hazard id {hazard_id!r}")

    def detectable_hazards(self, model_classes: Sequence[str]) -> list[Hazard]:
        """Hazards a model with these classes can raise (its anchor and `with` classes are known)."""
        known = set(model_classes)
        return [h for h in self.hazards if set(h.rule.when) & known and set(h.rule.with_) <= known]

    def evaluate(self, dets: Detections, class_names: Sequence[str]) -> list[HazardFinding]:
        """Hazards raised in one photo, most severe first, then by confidence."""
        if len(dets) == 0:
            return []
        names = np.array([class_names[int(c)] for c in dets.class_id])
        seen = set(names.tolist())
        findings: list[HazardFinding] = []
        for hazard in self.hazards:
            if not seen.intersection(hazard.rule.when):  # cheap skip: a video frame shows few classes
                continue
            findings.extend(self._apply(hazard, dets, names))
        findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], -f.confidence))
        return findings

    @staticmethod
    def _apply(hazard: Hazard, dets: Detections, names: np.ndarray) -> list[HazardFinding]:
        rule = hazard.rule
        anchors = np.flatnonzero(np.isin(names, rule.when))
        if anchors.size == 0:
            return []
        keep = np.ones(anchors.size, bool)
        for required, wanted in ((rule.with_, True), (rule.without, False)):
            for cls in required:
                idx = np.flatnonzero(names == cls)
                present: np.ndarray
                if rule.scope == "photo" or idx.size == 0:
                    present = np.full(anchors.size, idx.size > 0)
                else:
                    present = np.asarray((_ioa(dets.xyxy[anchors], dets.xyxy[idx]) >= rule.min_overlap).any(axis=1))
                keep &= present if wanted else ~present
        out = []
        for i in anchors[keep]:
            x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
            out.append(
                HazardFinding(
                    hazard_id=hazard.id,
                    name_zh=hazard.name_zh,
                    name_en=hazard.name_en,
                    domain=hazard.domain,
                    severity=hazard.severity,
                    legal_basis=hazard.legal_basis,
                    advice_zh=hazard.advice_zh,
                    confidence=float(dets.score[i]),
                    box=(x1, y1, x2, y2),
                    detection_indices=(int(i),),
                    advice_en=hazard.advice_en,
                )
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "detector_classes": [asdict(c) for c in self.detector_classes],
            "hazards": [
                {**{k: v for k, v in asdict(h).items() if k != "rule"}, "rule": _rule_dict(h.rule)}
                for h in self.hazards
            ],
        }


def _rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "when": list(rule.when),
        "with": list(rule.with_),
        "without": list(rule.without),
        "scope": rule.scope,
        "min_overlap": rule.min_overlap,
    }


def parse_taxonomy(data: dict[str, Any]) -> Taxonomy:
    """Validate a parsed taxonomy document; every error names the offending entry."""
    if not isinstance(data, dict) or "version" not in data:
        raise TaxonomyError("taxonomy must be a mapping with a 'version'")
    classes = tuple(
        DetectorClass(str(c["name"]), str(c.get("zh", c["name"])), bool(c.get("trained_by_default_model", False)))
        for c in data.get("detector_classes", [])
    )
    known = {c.name for c in classes}
    if len(known) != len(classes):
        raise TaxonomyError("detector class names must be unique")
    hazards = []
    seen: set[str] = set()
    for entry in data.get("hazards", []):
        hid = entry.get("id", "?")
        if hid in seen:
            raise TaxonomyError(f"hazard {hid}: duplicate id")
        seen.add(hid)
        missing = [
            k
            for k in ("name_zh", "name_en", "domain", "severity", "legal_basis", "advice_zh", "rule")
            if not entry.get(k)
        ]
        if missing:
            raise TaxonomyError(f"hazard {hid}: missing {', '.join(missing)}")
        if entry["severity"] not in SEVERITY_ORDER:
            raise TaxonomyError(f"hazard {hid}: severity must be one of {list(SEVERITY_ORDER)}")
        r = entry["rule"]
        rule = Rule(
            when=tuple(r.get("when", ())),
            with_=tuple(r.get("with", ())),
            without=tuple(r.get("without", ())),
            scope=r.get("scope", "overlap"),
            min_overlap=float(r.get("min_overlap", 0.3)),
        )
        unknown = (set(rule.when) | set(rule.with_) | set(rule.without)) - known
        if not rule.when or unknown:
            raise TaxonomyError(
                f"hazard {hid}: rule needs 'when' classes from detector_classes; unknown {sorted(unknown)}"
            )
        if rule.scope not in ("overlap", "photo"):
            raise TaxonomyError(f"hazard {hid}: scope must be 'overlap' or 'photo'")
        hazards.append(
            Hazard(
                hid,
                entry["name_zh"],
                entry["name_en"],
                entry["domain"],
                entry["severity"],
                entry["legal_basis"],
                entry["advice_zh"],
                rule,
                str(entry.get("advice_en") or ""),
            )
        )
    return Taxonomy(str(data["version"]), classes, tuple(hazards))


def default_taxonomy_path() -> Path:
    return _PACKAGED if _PACKAGED.exists() else _REPO


@lru_cache(maxsize=8)
def _load_cached(path: Path) -> Taxonomy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"cannot read taxonomy {path}: {exc}") from exc
    return parse_taxonomy(data)


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    return _load_cached(Path(path) if path else default_taxonomy_path())
