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
SAME_OBJECT_IOA = 0.7  # a later rule's anchor box this much inside (or around) an earlier finding's: same object

_PACKAGED = Path(__file__).parent / "_data" / "taxonomy.yaml"
_REPO = Path(__file__).resolve().parent.parent / "datasets" / "taxonomy.yaml"


class TaxonomyError(ValueError):
    """The taxonomy file is missing or malformed; the message names the entry."""


class UnknownSceneError(ValueError):
    """A scene id the taxonomy does not list; the message names the known ones."""


@dataclass(frozen=True)
class Rule:
    when: tuple[str, ...]
    with_: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    scope: Literal["overlap", "photo"] = "overlap"
    min_overlap: float = 0.3
    scene: tuple[str, ...] = ()  # applies only when the photo's scene is one of these (never without a scene)
    except_scene: tuple[str, ...] = ()  # does not apply in these scenes
    suspected: bool = False  # raises a suspicion for the inspector to confirm, not a confirmed detection

    def applies_in(self, scene: str | None) -> bool:
        if self.scene and scene not in self.scene:
            return False
        return scene is None or scene not in self.except_scene

    def raisable_by(self, known: set[str]) -> bool:
        return bool(set(self.when) & known) and set(self.with_) <= known


@dataclass(frozen=True)
class Scene:
    """A kind of place the inspector (app) or the camera config names: rules may require one."""

    id: str
    zh: str
    en: str


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
    more_rules: tuple[Rule, ...] = ()  # further ways to raise it (a list of rules in the taxonomy file)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return (self.rule, *self.more_rules)


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
    suspected: bool = False  # a suspicion for the inspector to confirm (the rule that raised it says so)


def _ioa(anchor: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Share of each anchor box (N,4) covered by each other box (M,4), and vice versa: max of both."""
    lt = np.maximum(anchor[:, None, :2], others[None, :, :2])
    rb = np.minimum(anchor[:, None, 2:], others[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(anchor[:, 2:] - anchor[:, :2], 1e-9, None).prod(axis=1)
    area_o = np.clip(others[:, 2:] - others[:, :2], 1e-9, None).prod(axis=1)
    return np.maximum(inter / area_a[:, None], inter / area_o[None, :])


def _same_object(a: HazardFinding, b: HazardFinding) -> bool:
    """Two findings of one hazard on one box, or on boxes mostly covering each other (a person box and a
    worker-at-height box of the same worker): the first rule's finding stands for both."""
    if a.detection_indices == b.detection_indices:
        return True
    if a.box is None or b.box is None:
        return False
    return bool(_ioa(np.array([a.box]), np.array([b.box]))[0, 0] >= SAME_OBJECT_IOA)


@dataclass(frozen=True)
class Taxonomy:
    version: str
    detector_classes: tuple[DetectorClass, ...]
    hazards: tuple[Hazard, ...]
    scenes: tuple[Scene, ...] = ()

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.detector_classes)

    def hazard(self, hazard_id: str) -> Hazard:
        for h in self.hazards:
            if h.id == hazard_id:
                return h
        raise KeyError(f"unknown hazard id {hazard_id!r}")

    @property
    def scene_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.scenes)

    def check_scene(self, scene: str | None) -> str | None:
        """``scene`` if the taxonomy lists it (or None); raises :class:`UnknownSceneError` naming the known ones."""
        if scene is not None and scene not in self.scene_ids:
            raise UnknownSceneError(f"unknown scene {scene!r}; known scenes: {', '.join(self.scene_ids)}")
        return scene

    def detectable_hazards(self, model_classes: Sequence[str]) -> list[Hazard]:
        """Hazards a model with these classes can raise without a scene (by a rule whose anchor and `with` classes
        it knows and that needs no scene); :meth:`coverage` also counts the rules that need one."""
        known = set(model_classes)
        return [h for h in self.hazards if any(r.raisable_by(known) and not r.scene for r in h.rules)]

    def coverage(self, model_classes: Sequence[str]) -> dict[str, Any]:
        """What a model with these classes can raise: ``detections`` (by a confirmed rule), ``suspicions`` (by a
        rule that raises a suspicion), ``need_scene`` (hazard -> the scenes in which some rule raises it, for
        hazards no scene-free rule raises) and ``cannot_raise`` (hazard -> the classes the closest rule lacks)."""
        known = set(model_classes)
        out: dict[str, Any] = {"detections": [], "suspicions": [], "need_scene": {}, "cannot_raise": {}}
        for h in self.hazards:
            able = [r for r in h.rules if r.raisable_by(known)]
            if not able:
                lacking = [sorted({*r.when, *r.with_} - known) for r in h.rules]
                out["cannot_raise"][h.id] = min(lacking, key=len)
                continue
            if any(not r.suspected for r in able):
                out["detections"].append(h.id)
            if any(r.suspected for r in able):
                out["suspicions"].append(h.id)
            if all(r.scene for r in able):
                out["need_scene"][h.id] = sorted({s for r in able for s in r.scene})
        return out

    def evaluate(self, dets: Detections, class_names: Sequence[str], scene: str | None = None) -> list[HazardFinding]:
        """Hazards raised in one photo taken in ``scene`` (None: no scene known, the rules that need one stay
        silent), most severe first, then by confidence. One finding per anchor box and hazard: the first rule
        (in taxonomy order) that raises it wins."""
        if len(dets) == 0:
            return []
        names = np.array([class_names[int(c)] for c in dets.class_id])
        seen = set(names.tolist())
        findings: list[HazardFinding] = []
        for hazard in self.hazards:
            taken: list[HazardFinding] = []
            for rule in hazard.rules:
                if not seen.intersection(rule.when) or not rule.applies_in(scene):  # a frame shows few classes
                    continue
                for f in self._apply(hazard, rule, dets, names):
                    if not any(_same_object(f, t) for t in taken):
                        taken.append(f)
            findings.extend(taken)
        findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], -f.confidence))
        return findings

    @staticmethod
    def _apply(hazard: Hazard, rule: Rule, dets: Detections, names: np.ndarray) -> list[HazardFinding]:
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
                    suspected=rule.suspected,
                )
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "detector_classes": [asdict(c) for c in self.detector_classes],
            "scenes": [asdict(s) for s in self.scenes],
            "hazards": [
                {
                    **{k: v for k, v in asdict(h).items() if k not in ("rule", "more_rules")},
                    "rule": _rule_dict(h.rule),
                    "rules": [_rule_dict(r) for r in h.rules],
                }
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
        "scene": list(rule.scene),
        "except_scene": list(rule.except_scene),
        "suspected": rule.suspected,
    }


def _parse_rule(hid: str, r: Any, known: set[str], scenes: set[str]) -> Rule:
    if not isinstance(r, dict):
        raise TaxonomyError(f"hazard {hid}: a rule must be a mapping, got {r!r}")
    rule = Rule(
        when=tuple(r.get("when", ())),
        with_=tuple(r.get("with", ())),
        without=tuple(r.get("without", ())),
        scope=r.get("scope", "overlap"),
        min_overlap=float(r.get("min_overlap", 0.3)),
        scene=tuple(r.get("scene", ())),
        except_scene=tuple(r.get("except_scene", ())),
        suspected=bool(r.get("suspected", False)),
    )
    unknown = (set(rule.when) | set(rule.with_) | set(rule.without)) - known
    if not rule.when or unknown:
        raise TaxonomyError(f"hazard {hid}: rule needs 'when' classes from detector_classes; unknown {sorted(unknown)}")
    if rule.scope not in ("overlap", "photo"):
        raise TaxonomyError(f"hazard {hid}: scope must be 'overlap' or 'photo'")
    stray = (set(rule.scene) | set(rule.except_scene)) - scenes
    if stray:
        raise TaxonomyError(f"hazard {hid}: scenes {sorted(stray)} are not in the taxonomy's scenes")
    return rule


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
    scenes = tuple(
        Scene(str(s["id"]), str(s.get("zh", s["id"])), str(s.get("en", s["id"]))) for s in data.get("scenes", [])
    )
    scene_ids = {s.id for s in scenes}
    if len(scene_ids) != len(scenes):
        raise TaxonomyError("scene ids must be unique")
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
        given = entry["rule"] if isinstance(entry["rule"], list) else [entry["rule"]]
        rules = [_parse_rule(hid, r, known, scene_ids) for r in given]
        rule = rules[0]
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
                tuple(rules[1:]),
            )
        )
    return Taxonomy(str(data["version"]), classes, tuple(hazards), scenes)


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
