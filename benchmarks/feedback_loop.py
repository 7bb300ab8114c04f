"""The loop from inspectors' decisions to a released model, measured end to end (issue 17, item 4).

    .venv/bin/python benchmarks/feedback_loop.py --plan                   # the steps and the commands they run
    .venv/bin/python benchmarks/feedback_loop.py --dry-run [--photos 12]  # steps 1-3 and 5 on synthetic photos
    nohup nice -n 19 .venv/bin/python benchmarks/feedback_loop.py --full --n 100 --n 50 \\
        > work/loop/full.log 2>&1 &                                        # the real loop, a few CPU hours
    .venv/bin/python benchmarks/feedback_loop.py --report                 # benchmarks/reports/feedback-loop.md

The full run (``--full``; every step's outputs, logs and wall time under ``work/loop``, state.json; a step that
is done is not run again, so a stopped run resumes):

0. start: the shipped model's dataset version rebuilt by the importer (its val split is the evaluation set),
   and the shipped model minus the new class (``hazardscan recover --drop-classes fire``, released under
   work/loop/models): the start of the loop and the baseline of the gate
1. seed: the service on that model; per held-back photo (the train-split photos of one source that carry a
   label of the new class, a fixed random N of them) an inspection (unit, scene) and the upload
2. decide: the simulated inspector (:func:`inspector_decisions`) confirms model boxes that match a label of
   their class (IoU >= 0.5), rejects the others, and adds every label box the model did not find (every box
   of the new class) as the hazard its class raises; boxes of classes the photo's source never labels stay
   undecided (the labels cannot say whether they are right)
3. export: ``hazardscan feedback export --status decided`` (an undecided class stays unlabelled on its photo)
4. review: ``--push-review`` to a Label Studio server started here as the tests start it, a reviewer who
   accepts every box, then ``--reviewed PROJECT`` (the review replaces the inspectors' boxes)
5. teach: ``hazardscan teach --model <start> --data <export> --classes <new class>`` (fine-tunes the start
   model on the export plus a replay of its own training photos)
6. gate: ``hazardscan eval --baseline <start>`` on the val split: the new class's AP50, and the A/B of every
   class both models have (exit 1: worse)
7. release: ``hazardscan release`` as a new model version under work/loop/models; the service started on it
   lists the new class in /v1/model
8. report: the new class's AP50 against the number of inspector-labelled photos, the gate, the wall time of
   every step (``--report``)

``--dry-run`` runs steps 1-3 and 5 (build only) with the test suite's tiny model and synthetic photos whose new
class (``exit_obstruction``, 堵塞安全出口 FIRE-006) is a grey block at a known place, and prints the wall time of
each step.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

PLAN = __doc__.split("The full run", 1)[1].split("``--dry-run`` runs", 1)[0]
NEW_HAZARD, NEW_CLASS = "FIRE-006", "exit_obstruction"
WORK = ROOT / "work" / "loop"
REPORT = ROOT / "benchmarks" / "reports" / "feedback-loop.md"
UNITS = ("东城工贸一厂", "西城仓储中心", "南区食品加工厂", "北区木器厂", "开发区物流园")  # simulated inspected units

Box = tuple[float, float, float, float]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw, ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0])), max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


# ---- the simulated inspector ------------------------------------------------------------------------------


@dataclass
class Decisions:
    """What the simulated inspector does on one photo: finding ids to confirm / reject / leave, boxes to add."""

    confirm: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    add: list[tuple[str, Box]] = field(default_factory=list)  # (hazard id, box)


def inspector_decisions(
    findings: Sequence[dict[str, Any]],
    labels: Sequence[tuple[str, Box]],
    labelled: set[str],
    hazard_of: dict[str, str],
    min_iou: float = 0.5,
) -> Decisions:
    """Decisions taken from a photo's labels (``(class, box)``; ``labelled``: the classes its source labels).

    A model finding of a labelled class is confirmed when it overlaps a not yet matched label of its class by
    ``min_iou`` (most confident findings first), else rejected; a finding of a class the source never labels,
    or without a detector class, is left undecided. Every label box no finding matched is added as the hazard
    ``hazard_of`` names for its class (classes without one are not added)."""
    out = Decisions()
    matched: set[int] = set()
    for f in sorted(findings, key=lambda f: -(f.get("confidence") or 0.0)):
        cls = f.get("detector_class")
        if cls is None or cls not in labelled:
            out.undecided.append(f["id"])
            continue
        best, best_iou = -1, min_iou
        for j, (c, box) in enumerate(labels):
            if c == cls and j not in matched and (iou := _iou(f["box"], box)) >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            matched.add(best)
            out.confirm.append(f["id"])
        else:
            out.reject.append(f["id"])
    out.add = [(hazard_of[c], box) for j, (c, box) in enumerate(labels) if j not in matched and c in hazard_of]
    return out


def hazards_by_class(taxonomy: Any, classes: Sequence[str]) -> dict[str, str]:
    """The hazard an inspector files for a box of each class: the first whose rule needs that class alone
    (no other class, no scene, not a suspicion)."""
    out: dict[str, str] = {}
    for hazard in taxonomy.hazards:
        r = hazard.rule
        if len(r.when) == 1 and r.when[0] in classes and not (r.with_ or r.without or r.scene or r.suspected):
            out.setdefault(r.when[0], hazard.id)
    return out


def held_back_photos(rows: Sequence[dict[str, Any]], source: str, class_id: int, seed: int = 0) -> list[dict]:
    """The train-split photos of ``source`` with a label of ``class_id``, in a fixed random order (the first N
    of them are the N photos the inspectors label; a smaller N is a subset of a larger one)."""
    chosen = sorted(
        (r for r in rows if r["source"] == source and r["split"] == "train" and any(int(b[4]) == class_id
                                                                                  for b in r["boxes"])),
        key=lambda r: r["sha1"],
    )  # fmt: skip
    random.Random(seed).shuffle(chosen)
    return chosen


# ---- the dry run (tiny model, synthetic photos) -----------------------------------------------------------

FIRE_BOX = (160.0, 80.0, 320.0, 240.0)  # the red square of every synthetic photo


def _photo(i: int) -> tuple[bytes, tuple[float, float, float, float]]:
    from _builders import encode, scene

    x = 40 + (i * 37) % 300
    box = (float(x), 260.0, float(x + 180), 460.0)
    img = scene(640, 480, [(160, 80, 320, 240, (230, 20, 20)), (x, 260, x + 180, 460, (90, 90, 90)),
                           (0, 0, 4, 4, (i % 256, 114, 114))])  # fmt: skip
    return encode(img, "JPEG", quality=90), box


def dry_run(n_photos: int) -> dict[str, float]:
    from _builders import build_model_dir
    from app_fixtures import start_app_server

    from training.train import TrainConfig, build_from_config

    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_model_dir(work / "model")
        with start_app_server(model, work / "app") as server:
            c = server.client("inspector")
            t0 = time.perf_counter()
            uploaded = []
            for i in range(n_photos):
                data, box = _photo(i)
                uploaded.append((_inspect(c, data, "image/jpeg", f"单位{i % 3}", f"k{i}"), box))
            times["1 seed (upload, model scores)"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            for photo, box in uploaded:
                labels = [("fire", FIRE_BOX), (NEW_CLASS, box)]
                _apply(c, photo, inspector_decisions(photo["findings"], labels, {"fire", NEW_CLASS},
                                                     {"fire": "FIRE-001", NEW_CLASS: NEW_HAZARD}))  # fmt: skip
            times["2 decide (confirm, add the new class)"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            card = _export(server.data_dir, server.database_url, work / "feedback", work)
            times["3 export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        config = work / "round.yaml"
        config.write_text(yaml.safe_dump({
            "name": "feedback-dry-run", "weights": "yolov8n.yaml", "sources": [str(work / "feedback" / "sources")],
            "datasets_root": str(work), "val_fraction": 0.25, "federated_loss": True,
            "train": {"imgsz": 64, "epochs": 1, "mosaic": 0.0},
        }))  # fmt: skip
        data_yaml = build_from_config(TrainConfig.load(config), work / "built")
        built = json.loads((data_yaml.parent / "dataset_card.json").read_text())
        times["5 import + build (config resolves)"] = time.perf_counter() - t0
    log.info(f"feedback {card['version']}: {card['photos']} photos, per class {json.dumps(card['per_class'])}")
    log.info(f"built dataset {built.get('version')}: classes {built.get('classes')}")
    return times


# ---- steps shared by both runs --------------------------------------------------------------------------


def _inspect(c: Any, data: bytes, content_type: str, unit: str, key: str, scene: str = "industry") -> dict:
    """One inspection of ``unit`` with one uploaded photo; returns the photo as the API gives it."""
    insp = c.post("/app/api/inspections", json={"unit": {"name": unit}, "scene": scene})
    insp.raise_for_status()
    r = c.post(f"/app/api/inspections/{insp.json()['id']}/photos", files={"photo": ("p.jpg", data, content_type)},
               data={"idempotency_key": key})  # fmt: skip
    r.raise_for_status()
    return dict(r.json())


def _apply(c: Any, photo: dict, decisions: Decisions) -> None:
    for ids, decision in ((decisions.confirm, "confirm"), (decisions.reject, "reject")):
        for fid in ids:
            c.post(f"/app/api/findings/{fid}/decision", json={"decision": decision}).raise_for_status()
    for hazard, box in decisions.add:
        r = c.post(f"/app/api/photos/{photo['id']}/findings", json={"hazard_id": hazard, "box": [*box]})
        r.raise_for_status()


def _cli(argv: Sequence[str]) -> dict[str, Any]:
    """``hazardscan ARGV`` in this process; its JSON output."""
    from inference_service.cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli([str(a) for a in argv])
    if rc != 0:
        raise RuntimeError(f"hazardscan {' '.join(map(str, argv[:2]))} exited with {rc}")
    return dict(json.loads(out.getvalue())) if out.getvalue().strip() else {}


def _export(data_dir: Path, database: str, out: Path, root: Path, *extra: str) -> dict[str, Any]:
    _cli(["feedback", "export", "--out", out, "--data-dir", data_dir, "--database", database,
          "--datasets-root", root, *extra])  # fmt: skip
    return dict(json.loads((out / "feedback_card.json").read_text()))


# ---- the full run -------------------------------------------------------------------------------------------


class State:
    """``work/loop/state.json``: per step its wall time and what it measured; a recorded step is done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    @contextlib.contextmanager
    def step(self, key: str) -> Iterator[dict[str, Any]]:
        """Times the block and records what it put into the yielded dict (nothing when it raised)."""
        log.info("step %s ...", key)
        info: dict[str, Any] = {}
        t0 = time.perf_counter()
        yield info
        info["wall_s"] = round(time.perf_counter() - t0, 1)
        # re-read first: runs for different N may share the file (each writes only its own steps)
        self.data = {**(json.loads(self.path.read_text()) if self.path.is_file() else {}), key: info}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.data, ensure_ascii=False, indent=1))
        partial.replace(self.path)
        log.info("step %s: %.1f s %s", key, info["wall_s"], json.dumps(info, ensure_ascii=False)[:400])


@dataclass
class Setup:
    model: Path  # the shipped model
    new_class: str
    source: str  # the photo set whose photos the inspectors label
    config: Path  # the training config whose dataset version the shipped model was trained on
    work: Path
    seed: int = 0
    teach_args: list[str] = field(default_factory=list)  # more arguments for `hazardscan teach`

    @property
    def start_model(self) -> Path:
        return self.work / "models" / f"{self.model.resolve().name}-no-{self.new_class}"


def _hazardscan(argv: Sequence[str | Path], logfile: Path) -> int:
    """``hazardscan ARGV`` as a child process (it inherits this process's nice), output to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "inference_service.cli", *map(str, argv)]
    with logfile.open("ab") as out:
        out.write(f"\n$ hazardscan {' '.join(cmd[3:])}\n".encode())
        out.flush()
        return subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False).returncode


def _must(rc: int, what: str, logfile: Path) -> None:
    if rc != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{what} exited with {rc}; the end of {logfile}:\n{tail}")


def prepare(setup: Setup, state: State) -> Path:
    """Step 0: the dataset version of the shipped model (rebuilt from the specs) and the start model; returns
    the dataset folder."""
    from training.train import TrainConfig, build_from_config

    shipped = json.loads((setup.model / "card.json").read_text())
    if not (done := state.get("0 dataset")) or not Path(done["dir"]).is_dir():
        with state.step("0 dataset") as info:
            data_yaml = build_from_config(TrainConfig.load(setup.config), ROOT / "work" / "datasets")
            card = json.loads((data_yaml.parent / "dataset_card.json").read_text())
            want = shipped.get("data", {}).get("dataset_version")
            if want and card["version"] != want:
                raise RuntimeError(
                    f"{setup.config} builds dataset {card['version']}, {setup.model} was trained on {want}"
                )
            info.update(dir=str(data_yaml.parent), version=card["version"], photos=card["photos"])
    dataset = Path(state.data["0 dataset"]["dir"])
    if not state.get("0 start model") or not (setup.start_model / "card.json").is_file():
        with state.step("0 start model") as info:
            logfile = setup.work / "start-model.log"
            checkpoint = setup.work / "start" / f"{setup.start_model.name}.pt"
            _must(_hazardscan(["recover", "--model", setup.model, "--drop-classes", setup.new_class, "--out",
                               checkpoint, "--photos", dataset / "images" / "train", "--release", setup.start_model],
                              logfile), "recover --drop-classes", logfile)  # fmt: skip
            card = json.loads((setup.start_model / "card.json").read_text())
            info.update(model=str(setup.start_model), classes=card["classes"], version=card["version"])
    return dataset


def seed_and_decide(setup: Setup, state: State, n: int, dataset: Path) -> None:
    """Steps 1-2 on a fresh service data folder (both again if either is missing)."""
    from app_fixtures import start_app_server

    from inference_service.taxonomy import load_taxonomy

    if state.get(f"n{n} 1 seed") and state.get(f"n{n} 2 decide"):
        return
    rows = [json.loads(line) for line in (dataset / "manifest.jsonl").read_text().splitlines()]
    classes = json.loads((dataset / "dataset_card.json").read_text())["classes"]
    spec = next(s for s in json.loads((dataset / "dataset_card.json").read_text())["sources"]
                if s["name"] == setup.source)  # fmt: skip
    labelled = {c for c in spec["class_map"].values() if c}
    photos = held_back_photos(rows, setup.source, classes.index(setup.new_class), setup.seed)
    if len(photos) < n:
        raise RuntimeError(f"{setup.source} has {len(photos)} train photos with {setup.new_class}, fewer than {n}")
    photos = photos[:n]
    hazard_of = hazards_by_class(load_taxonomy(), sorted(labelled))
    app = setup.work / f"n{n}" / "app"
    if app.exists():
        import shutil

        shutil.rmtree(app)
    with start_app_server(setup.start_model, app, HAZARDSCAN_PRECISION="fp32") as server:
        c = server.client("inspector")
        uploaded = []
        with state.step(f"n{n} 1 seed") as info:
            for i, row in enumerate(photos):
                data = Path(row["image"]).read_bytes()
                kind = "image/png" if row["image"].lower().endswith(".png") else "image/jpeg"
                uploaded.append((_inspect(c, data, kind, UNITS[i % len(UNITS)], f"loop-{row['sha1']}"), row))
            found = Counter(f["detector_class"] for p, _ in uploaded for f in p["findings"])
            info.update(photos=len(uploaded), model_findings=dict(sorted(found.items(), key=str)),
                        data_dir=str(server.data_dir), database=server.database_url)  # fmt: skip
        with state.step(f"n{n} 2 decide") as info:
            tally: Counter[str] = Counter()
            for photo, row in uploaded:
                labels = [(classes[int(b[4])], (b[0], b[1], b[2], b[3])) for b in row["boxes"]]
                d = inspector_decisions(photo["findings"], labels, labelled, hazard_of)
                _apply(c, photo, d)
                by_id = {f["id"]: f["detector_class"] for f in photo["findings"]}
                tally.update(f"confirmed {by_id[i]}" for i in d.confirm)
                tally.update(f"rejected {by_id[i]}" for i in d.reject)
                tally.update(f"undecided {by_id[i]}" for i in d.undecided)
                tally.update(f"added {h}" for h, _ in d.add)
            info.update(decisions=dict(sorted(tally.items())), labelled_classes=sorted(labelled), hazards=hazard_of)


def export(setup: Setup, state: State, n: int, root: Path) -> Path:
    """Step 3; returns the export folder."""
    out = setup.work / f"n{n}" / "feedback"
    seeded = state.data[f"n{n} 1 seed"]
    if not state.get(f"n{n} 3 export") or not (out / "feedback_card.json").is_file():
        with state.step(f"n{n} 3 export") as info:
            card = _export(Path(seeded["data_dir"]), seeded["database"], out, root, "--status", "decided")
            info.update(version=card["version"], photos=card["photos"], per_class=card["per_class"],
                        decisions=card["decisions"], sources=card["sources"])  # fmt: skip
    return out


@contextlib.contextmanager
def label_studio(data_dir: Path) -> Iterator[str]:
    """A Label Studio server on loopback, started the way the tests start it (tests/labelstudio_fixture.py)."""
    from labelstudio_fixture import _free_port, _stop, _wait_healthy, find_label_studio, server_env

    binary = find_label_studio()
    if binary is None:
        raise FileNotFoundError("no Label Studio server (.venv-labelstudio/bin/label-studio): see labelstudio_fixture")
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{_free_port()}"
    logfile = data_dir / "server.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
             "--data-dir", str(data_dir)],
            cwd=data_dir, env=server_env(data_dir), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_healthy(url, proc, logfile)
        yield url
    finally:
        _stop(proc)


def accept_every_box(client: Any, project: int) -> dict[str, int]:
    """The reviewer: submits every task's pre-annotation as it is (a task without one: nothing there)."""
    predicted = {p.task: p for p in client.predictions.list(project=project)}
    tasks = [t.id for t in client.tasks.list(project=project)]
    boxes = 0
    for task in tasks:
        p = predicted.get(task)
        result = list(p.result or []) if p is not None else []
        client.annotations.create(id=task, result=result, **({"parent_prediction": p.id} if p is not None else {}))
        boxes += len(result)
    return {"tasks": len(tasks), "boxes_accepted": boxes}


def review(setup: Setup, state: State, n: int, out: Path, root: Path) -> None:
    """Step 4: push the export for review, accept every box, apply the review (re-exports into ``out``)."""
    from training import labelstudio as ls

    if state.get(f"n{n} 4 review"):
        return
    seeded = state.data[f"n{n} 1 seed"]
    base = [Path(seeded["data_dir"]), seeded["database"], out, root]
    with state.step(f"n{n} 4 review") as info:
        t0 = time.perf_counter()
        with label_studio(setup.work / f"n{n}" / "labelstudio") as url:
            info["server_start_s"] = round(time.perf_counter() - t0, 1)
            token = ls.get_token(url, "reviewer@example.com", "hazard-Scan-2026!")
            server = ["--url", url, "--token", token]
            t0 = time.perf_counter()
            argv = ["feedback", "export", "--out", out, "--data-dir", base[0], "--database", base[1],
                    "--datasets-root", root, "--status", "decided", "--push-review", f"loop n{n}", *server]  # fmt: skip
            pushed = _cli(argv)
            info["push_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            info.update(accept_every_box(ls.connect(url, token), pushed["review_project"]))
            info["review_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            card = _export(*base, "--status", "decided", "--reviewed", str(pushed["review_project"]), *server)  # type: ignore[arg-type]
            info["pull_apply_s"] = round(time.perf_counter() - t0, 1)
        info.update(project=pushed["review_project"], version_before=pushed["version"], version=card["version"],
                    review=card["review"], per_class=card["per_class"], sources=card["sources"])  # fmt: skip


def teach(setup: Setup, state: State, n: int, data: Path) -> Path:
    """Step 5: ``hazardscan teach`` from the start model on the export; returns the taught model folder."""
    out = setup.work / f"n{n}" / "teach"
    model = setup.work / "models" / f"{setup.model.resolve().name}-{setup.new_class}-n{n}"
    if not state.get(f"n{n} 5 teach") or not (model / "card.json").is_file():
        logfile = setup.work / f"n{n}" / "teach.log"
        with state.step(f"n{n} 5 teach") as info:
            argv = ["teach", "--model", setup.start_model, "--data", data, "--classes", setup.new_class,
                    "--out", out, "--release", model, *setup.teach_args]  # fmt: skip
            _must(_hazardscan(argv, logfile), "teach", logfile)
            card = json.loads((model / "card.json").read_text())
            record = json.loads((out / "teach.json").read_text())
            info.update(model=str(model), model_id=card["model_id"], version=card["version"], classes=card["classes"],
                        argv=[str(a) for a in argv])  # fmt: skip
            info["teach"] = {k: v for k, v in record.items() if k not in ("photo_list", "epoch_log", "classes")}
    return model


def gate(setup: Setup, state: State, n: int, model: Path, dataset: Path) -> None:
    """Step 6: the taught model against the start model on the val split (exit 1: worse on the shared classes)."""
    if state.get(f"n{n} 6 gate"):
        return
    out = setup.work / f"n{n}" / "gate"
    logfile = setup.work / f"n{n}" / "gate.log"
    with state.step(f"n{n} 6 gate") as info:
        rc = _hazardscan(["eval", "--model", model, "--data", dataset, "--split", "val", "--baseline",
                          setup.start_model, "--out", out, "--no-int8"], logfile)  # fmt: skip
        if rc not in (0, 1):
            _must(rc, "eval --baseline", logfile)
        report = json.loads((out / "report.json").read_text())
        info.update(exit=rc, passed=rc == 0, report=str(out / "report.json"), **gate_figures(report, setup.new_class))


def gate_figures(report: dict[str, Any], new_class: str) -> dict[str, Any]:
    """What an eval report says of the new class, of every class, and of the A/B over the classes both have."""
    rows = {r["class"]: r for r in report.get("per_class", [])}
    new = rows.get(new_class, {})
    ab = report.get("ab") or {}
    ab_classes = ab.get("per_class") or {}
    return {
        "new_class": {k: new.get(k) for k in ("ap50", "ap50_95", "gt", "photos", "precision", "recall", "threshold")},
        "map50": report["overall"]["map50"],
        "per_class_ap50": {c: r.get("ap50") for c, r in rows.items()},
        "ab": {
            "verdict": ab.get("verdict"),
            "line": ab.get("line"),
            "map50": ab.get("map50"),
            "per_class": {c: _pick(v, "current", "candidate", "diff", "ci") for c, v in ab_classes.items()},
        },
        "baseline": report.get("baseline"),
    }


def _pick(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: d.get(k) for k in keys}


def serve(setup: Setup, state: State, n: int, model: Path) -> None:
    """Step 7 (the end): the service started on the new model; what /v1/model says."""
    import httpx
    from app_fixtures import start_app_server

    if state.get(f"n{n} 7 serve"):
        return
    with state.step(f"n{n} 7 serve") as info:
        with start_app_server(model, setup.work / f"n{n}" / "app-new", HAZARDSCAN_PUBLIC_ROUTES="/v1/model") as server:
            card = httpx.get(f"{server.base_url}/v1/model", timeout=30).raise_for_status().json()
        info.update(model_id=card["model_id"], version=card["version"], classes=card["classes"],
                    has_new_class=setup.new_class in card["classes"], raises=card["hazards"]["detections"])  # fmt: skip


STAGES = ("export", "review", "teach", "gate", "serve")


def full_run(setup: Setup, ns: Sequence[int], until: str = "serve") -> State:
    """Every step for each N (largest first), up to and including the stage ``until``."""
    state = State(setup.work / "state.json")
    dataset = prepare(setup, state)
    root = datasets_root(setup.config)
    last = STAGES.index(until)
    for n in sorted(ns, reverse=True):
        seed_and_decide(setup, state, n, dataset)
        out = export(setup, state, n, root)
        if last < STAGES.index("review"):
            continue
        try:
            review(setup, state, n, out, root)
        except FileNotFoundError as exc:  # no Label Studio here: teach from the inspectors' boxes as exported
            log.warning("review skipped: %s", exc)
        if last < STAGES.index("teach"):
            continue
        model = teach(setup, state, n, out)
        if last >= STAGES.index("gate"):
            gate(setup, state, n, model, dataset)
        if last >= STAGES.index("serve"):
            serve(setup, state, n, model)
    return state


def datasets_root(config: Path) -> Path:
    from training.train import TrainConfig

    cfg = TrainConfig.load(config)
    return cfg.resolve(cfg.datasets_root).resolve()


def report_text(state: State) -> str:
    """The report's figures as markdown, from the recorded steps (the prose around them is written by hand)."""
    d = state.data
    ns = sorted({int(k.split()[0][1:]) for k in d if k.startswith("n")})
    head = "| step | " + " | ".join(f"N = {n}" for n in ns) + " |"
    lines = [head, "|---|" + "---:|" * len(ns)]
    for step in sorted({k.split(" ", 1)[1] for k in d if k.startswith("n")}):
        lines.append(f"| {step} | " + " | ".join(_seconds(d.get(f"n{n} {step}", {}).get("wall_s")) for n in ns) + " |")
    totals = [sum(v.get("wall_s", 0.0) for k, v in d.items() if k.startswith(f"n{n} ")) for n in ns]
    lines.append("| **loop, steps 1-7** | " + " | ".join(f"**{_seconds(t)}**" for t in totals) + " |")
    start = [f"- {k}: {_seconds(v.get('wall_s'))}" for k, v in sorted(d.items()) if k.startswith("0 ")]
    curve = ["| inspector-labelled photos | new class AP50 | AP50-95 | val boxes | teach CPU min | epochs | gate |",
             "|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    ab_rows: dict[str, dict[int, str]] = {}
    base: dict[str, float | None] = {}
    verdicts = []
    for n in ns:
        g, t = d.get(f"n{n} 6 gate"), (d.get(f"n{n} 5 teach") or {}).get("teach", {})
        if not g:
            continue
        new = g.get("new_class") or {}
        cpu = t.get("total_cpu_s")
        curve.append(f"| {n} | {_fmt(new.get('ap50'))} | {_fmt(new.get('ap50_95'))} | {new.get('gt', '-')} | "
                     f"{'-' if cpu is None else f'{cpu / 60:.1f}'} | {t.get('epochs', '-')} | "
                     f"{'passed' if g.get('passed') else 'failed'} |")  # fmt: skip
        ab = g.get("ab") or {}
        verdicts.append(f"- N = {n}: {ab.get('line')}")
        for c, v in (ab.get("per_class") or {}).items():
            ab_rows.setdefault(c, {})[n] = _ab_cell(v)
            base[c] = v.get("current")
        ab_rows.setdefault("**mAP50 (gate)**", {})[n] = _ab_cell(ab.get("map50") or {})
        base["**mAP50 (gate)**"] = (ab.get("map50") or {}).get("current")
    gated = [n for n in ns if d.get(f"n{n} 6 gate")]
    table = ["| class | start model | " + " | ".join(f"N = {n}: AP50 (diff, points [95% CI])" for n in gated) + " |",
             "|---|---:|" + "---:|" * len(gated)]  # fmt: skip
    for c, row in ab_rows.items():
        table.append(f"| {c} | {_fmt(base.get(c))} | " + " | ".join(row.get(n, "-") for n in gated) + " |")
    served = [f"- N = {n}: {v['model_id']} {v['version']}, classes {', '.join(v['classes'])}; "
              f"the new class listed: {'yes' if v['has_new_class'] else 'no'}"
              for n in ns if (v := d.get(f"n{n} 7 serve"))]  # fmt: skip
    return "\n".join([
        "### New class against the number of inspector-labelled photos", "", *curve, "",
        "### The gate: every class both models have", "", *table, "", *verdicts, "",
        "### /v1/model of the service started on the new model", "", *served, "",
        "### Wall time per step", "", *start, "", *lines, "",
    ])  # fmt: skip


def _ab_cell(v: dict[str, Any]) -> str:
    lo, hi = v.get("ci") or (None, None)
    return f"{_fmt(v.get('candidate'))} ({_pts(v.get('diff'))} [{_pts(lo)}, {_pts(hi)}])"


def _pts(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


FIGURES = ("<!-- figures: benchmarks/feedback_loop.py --report -->", "<!-- /figures -->")


def write_report(path: Path, figures: str) -> None:
    """Put ``figures`` between the report's figure marks (the hand-written text around them stays)."""
    text = path.read_text() if path.is_file() else f"# The feedback loop, end to end\n\n{FIGURES[0]}\n{FIGURES[1]}\n"
    before, rest = text.split(FIGURES[0], 1)
    after = rest.split(FIGURES[1], 1)[1]
    path.write_text(f"{before}{FIGURES[0]}\n{figures}{FIGURES[1]}{after}")


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Label Studio request otherwise
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", action="store_true", help="print the steps")
    p.add_argument("--dry-run", action="store_true", help="steps 1-3 and 5 on synthetic photos with the tiny model")
    p.add_argument("--photos", type=int, default=12, help="--dry-run: synthetic photos")
    p.add_argument("--full", action="store_true", help="the real loop (resumes from work/loop/state.json)")
    p.add_argument("--n", type=int, action="append", help="--full: inspector-labelled photos (repeatable)")
    p.add_argument("--until", choices=STAGES, default="serve", help="--full: stop after this stage")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "hazardscan-v5", help="the shipped model")
    p.add_argument("--new-class", default="fire", help="the class the start model lacks and the inspectors add")
    p.add_argument("--source", default="fire-smoke-cctv", help="the photo set the held-back photos come from")
    p.add_argument("--config", type=Path, default=ROOT / "training" / "configs" / "v7-phash.yaml",
                   help="the training config that builds the shipped model's dataset version")  # fmt: skip
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--teach-arg", action="append", default=[], help="--full: one more argument for teach")
    p.add_argument("--report", action="store_true", help=f"write {REPORT.relative_to(ROOT)} from the state")
    args = p.parse_args()
    if args.plan or not (args.dry_run or args.full or args.report):
        log.info("The full run" + PLAN)
        return 0
    if args.dry_run:
        total = time.perf_counter()
        for step, seconds in dry_run(args.photos).items():
            log.info(f"  {step:40} {seconds:7.2f} s")
        log.info(f"  {'dry run, all steps':40} {time.perf_counter() - total:7.2f} s")
    if args.full:
        setup = Setup(args.model, args.new_class, args.source, args.config, args.work, teach_args=args.teach_arg)
        full_run(setup, args.n or [100], args.until)
    if args.report:
        write_report(REPORT, report_text(State(args.work / "state.json")))
        log.info("wrote %s", REPORT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
