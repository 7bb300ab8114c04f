"""hazardscan teach: the photo draw (deterministic, nested), labels restricted to what is taught, the replay
sample, the CPU budget, the training arguments and the teach dataset the federated loss reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from inference_service.detections import Detections
from training.importer import Sample

CLASSES = ["fire", "smoke", "no_helmet"]


def _sample(i: int, class_ids: list[int], source: str = "set") -> Sample:
    boxes = np.array([[1.0 + k, 2.0, 10.0 + k, 12.0] for k in range(len(class_ids))], np.float32).reshape(-1, 4)
    labels = Detections(boxes, np.array(class_ids, np.int64), np.ones(len(class_ids), np.float32))
    return Sample(Path(f"/photos/{i}.jpg"), source, 64, 48, labels, f"{i:040x}")


def test_remap_reindexes_and_keeps_only_the_named_classes():
    from training.teach import remap

    s = _sample(0, [0, 1, 2, 1])
    out = remap(s, CLASSES, ["no_helmet", "helmet", "smoke"], keep={"smoke", "no_helmet", "fire"})
    # fire is not a class of the target list: dropped; smoke -> 2, no_helmet -> 0
    assert out.labels.class_id.tolist() == [2, 0, 2]
    np.testing.assert_array_equal(out.labels.xyxy, s.labels.xyxy[[1, 2, 3]])
    only_smoke = remap(s, CLASSES, CLASSES, keep={"smoke"})
    assert only_smoke.labels.class_id.tolist() == [1, 1] and only_smoke.image == s.image
    assert len(remap(_sample(1, []), CLASSES, CLASSES, keep={"fire"}).labels) == 0


def test_choose_photos_is_deterministic_nested_and_only_photos_showing_the_class():
    from training.teach import choose_photos

    samples = [_sample(i, [i % 3]) for i in range(30)]  # fire on 10 of them
    fire = {0}
    ten = choose_photos(samples, fire, 10, seed=0)
    assert len(ten) == 10 and all(0 in s.labels.class_id for s in ten)
    five = choose_photos(list(reversed(samples)), fire, 5, seed=0)  # the input order does not matter
    assert [s.sha1 for s in five] == [s.sha1 for s in ten[:5]]
    assert [s.sha1 for s in choose_photos(samples, fire, 5, seed=1)] != [s.sha1 for s in five]
    assert choose_photos(samples, fire, 0, seed=0) == []
    assert len(choose_photos(samples, fire, None, seed=0)) == 10
    with pytest.raises(ValueError, match="only 10 photos"):
        choose_photos(samples, fire, 11, seed=0)


def test_a_byte_identical_copy_counts_once():
    from training.teach import choose_photos

    a, b = _sample(1, [0]), _sample(1, [0], source="other")  # same sha1
    assert len(choose_photos([a, b, _sample(2, [0])], {0}, None, seed=0)) == 2


def test_draw_takes_n_of_the_pool_deterministically():
    from training.teach import draw

    pool = [_sample(i, [1]) for i in range(50)]
    a, b = draw(pool, 20, seed=3), draw(list(reversed(pool)), 20, seed=3)
    assert len(a) == 20 and len({s.sha1 for s in a}) == 20 and [s.sha1 for s in a] == [s.sha1 for s in b]
    assert len(draw(pool, 80, seed=3)) == 50


@pytest.mark.parametrize(
    ("budget", "cpu", "wall", "hours"),
    [
        (1800, 0, 0, 0.5),  # nothing measured yet: the budget as wall time
        (1800, 600, 600, 0.5),  # a whole core: wall = CPU
        (1800, 600, 1200, 1.0),  # half a core (a shared machine): twice the wall time
        (1800, 1200, 600, 0.25),  # two threads busy: half the wall time
    ],
)
def test_budget_hours(budget: float, cpu: float, wall: float, hours: float):
    from training.teach import budget_hours

    assert budget_hours(budget, cpu, wall) == pytest.approx(hours)


def test_cpu_budget_resets_the_time_argument_after_each_epoch():
    from training.teach import CpuBudget

    budget = CpuBudget(cpu_minutes=30)
    trainer = argparse.Namespace(args=argparse.Namespace(time=0.5))
    budget.on_train_start(trainer)
    sum(i * i for i in range(200_000))  # some CPU time
    budget.on_train_epoch_end(trainer)
    assert len(budget.epochs) == 1 and budget.epochs[0]["cpu_s"] >= 0
    assert trainer.args.time > 0 and trainer.args.time != 0.5


def test_train_args_budget_and_no_mosaic():
    from training.teach import train_args

    args = train_args(416, cpu_minutes=30, threads=2, freeze=10, lr0=0.005)
    assert args["time"] == pytest.approx(0.25) and args["mosaic"] == 0.0 and args["freeze"] == 10
    assert args["warmup_epochs"] == 0 and args["workers"] == 0 and not args["val"]


def test_load_specs_reads_a_file_a_folder_and_a_feedback_export(tmp_path: Path):
    from training.teach import load_specs

    spec = {"name": "a", "root": "a", "images": ["*.jpg"], "class_map": {"x": "fire"}}
    (tmp_path / "export" / "sources").mkdir(parents=True)
    (tmp_path / "export" / "sources" / "a.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "export" / "sources" / "b.yaml").write_text(yaml.safe_dump({**spec, "name": "b"}))
    assert [s.name for s in load_specs(tmp_path / "export")] == ["a", "b"]
    assert [s.name for s in load_specs(tmp_path / "export" / "sources")] == ["a", "b"]
    assert [s.name for s in load_specs(tmp_path / "export" / "sources" / "b.yaml")] == ["b"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load_specs(tmp_path / "empty")


def test_the_teach_dataset_masks_new_photos_to_the_taught_class(tmp_path: Path):
    """New photos (source ``teach-new``) teach only fire; replay photos only what their source labels, less fire."""
    from tests._builders import scene
    from training.federated import class_masks
    from training.teach import write_teach_dataset

    photos = []
    for i in range(3):
        path = tmp_path / f"p{i}.png"
        scene(64, 48, [(i, 0, 16 + i, 16, (255, 0, 0))]).save(path)
        photos.append(path)
    new = [Sample(photos[0], "teach-new", 64, 48, _sample(0, [0]).labels, "a" * 40)]
    replay = [
        Sample(photos[1], "old", 64, 48, _sample(1, [1]).labels, "b" * 40),
        Sample(photos[2], "old", 64, 48, _sample(2, []).labels, "c" * 40),
    ]
    sources = [
        {"name": "teach-new", "origin": "", "licence": "", "format": "yolo", "class_map": {"f": "fire"}},
        {"name": "old", "origin": "", "licence": "", "format": "yolo", "class_map": {"s": "smoke", "h": "no_helmet"}},
    ]
    data_yaml = write_teach_dataset(tmp_path / "ds", CLASSES, new, replay, sources, "test")
    card = json.loads((data_yaml.parent / "dataset_card.json").read_text())
    assert card["photos"] == {"train": 3, "val": 3} and card["boxes_per_class"]["train"]["fire"] == 1
    masks, classes = class_masks(data_yaml)
    assert classes == CLASSES
    by_source = {name.split("__")[0]: m.tolist() for name, m in masks.items()}
    assert by_source == {"teach-new": [True, False, False], "old": [False, True, True]}
    label = (data_yaml.parent / "labels" / "train").glob("teach-new__*.txt")
    assert next(label).read_text().startswith("0 ")


def test_cli_rejects_a_class_outside_the_taxonomy(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from inference_service.cli import main
    from tests._builders import build_model_dir

    model = build_model_dir(tmp_path / "m", data={"dataset_version": "x"})
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "a", "root": "a", "images": ["*.jpg"], "class_map": {"x": "fire"}}))
    code = main(
        ["teach", "--model", str(model), "--data", str(spec), "--classes", "unicorn", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "unicorn" in capsys.readouterr().err


@pytest.mark.slow
def test_teach_end_to_end_on_a_tiny_model(tmp_path: Path):
    """A YOLOv8n at 64 px exported as a release does, its dataset of five synthetic photos, fire taught again
    from zero: one command gives a served model with the class, a card that says how, and the CPU it took."""
    pytest.importorskip("ultralytics")
    import onnx
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from inference_service.runtime import Detector
    from tests._builders import fire_only_dataset
    from training.dataset import load_manifest
    from training.export import _ultralytics_export, embed_card
    from training.teach import teach

    built = fire_only_dataset(tmp_path)
    torch.manual_seed(0)
    net = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    net.names = {0: "fire", 1: "smoke"}
    with torch.no_grad():  # a trained model's BatchNorms are far from identity (an identity one exports no bias)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                bn: Any = m
                bn.bias.normal_(0, 0.3)
                bn.running_mean.normal_(0, 0.5)
    torch.save({"model": net.eval(), "train_args": {"task": "detect", "imgsz": 64}, "epoch": -1}, tmp_path / "t.pt")
    card = {
        "model_id": "tiny-v8", "version": "1", "architecture": "yolov8n", "classes": ["fire", "smoke"],
        "input_size": [64, 64], "nms_iou": 0.5, "class_thresholds": {"fire": 0.3, "smoke": 0.4},
        "data": {"dataset_version": built.version},
    }  # fmt: skip
    model = tmp_path / "model"
    model.mkdir()
    exported = _ultralytics_export(tmp_path / "t.pt", tmp_path / "export", 64, True, 17)
    onnx.save(embed_card(onnx.load(str(exported)), card), str(model / "model.onnx"))
    (model / "card.json").write_text(json.dumps(card))
    spec = tmp_path / "fireonly.yaml"
    spec.write_text(
        yaml.safe_dump({"name": "fireonly", "root": "fireonly", "images": ["images/*.png"], "names": ["f"],
                        "class_map": {"f": "fire"}})
    )  # fmt: skip

    record = teach(
        model, spec, ["fire"], tmp_path / "out", fresh=True, replay=4, cpu_minutes=0.05,
        datasets_root=tmp_path / "sets", datasets=tmp_path / "ds", release_to=tmp_path / "taught",
    )  # fmt: skip
    val = {json.loads(line)["sha1"] for line in (built.root / "manifest.jsonl").read_text().splitlines()
           if json.loads(line)["split"] == "val"}  # fmt: skip
    assert record["photos"] + record["photos_left_out_as_val"] == 4 and record["photos"] >= 1
    assert record["fresh"] == ["fire"] and record["classes"] == ["fire", "smoke"] and record["epochs"] >= 1
    assert record["train_cpu_s"] > 0 and record["total_cpu_s"] >= record["train_cpu_s"]
    chosen = (tmp_path / "out" / "dataset" / "manifest.jsonl").read_text().splitlines()
    assert not {json.loads(line)["sha1"] for line in chosen if "teach-" in line} & val  # never a val photo
    det = Detector.load(tmp_path / "taught")
    assert det.card.classes == ["fire", "smoke"] and det.card.class_thresholds == {"smoke": 0.4}
    released = json.loads((tmp_path / "taught" / "card.json").read_text())
    assert released["training"]["teach"]["taught"] == ["fire"] and released["architecture"] == "yolov8n"
    # a taught model is taught again: it replays its start model's dataset (its own teach dataset has no recipe)
    again = teach(
        tmp_path / "taught", spec, ["fire"], tmp_path / "again", fresh=True, replay=4, cpu_minutes=0, negatives=True,
        datasets_root=tmp_path / "sets", datasets=tmp_path / "ds", release_to=tmp_path / "taught-again",
    )  # fmt: skip
    # --negatives: the replay photos' sources count as labelling fire, so the federated loss teaches its absence
    from training.federated import class_masks

    masks, mask_classes = class_masks(tmp_path / "again" / "dataset" / "data.yaml")
    fire = mask_classes.index("fire")
    assert masks and all(m[fire] for m in masks.values()) and again["negatives"] is True
    first, _ = class_masks(tmp_path / "out" / "dataset" / "data.yaml")
    assert not all(m[fire] for m in first.values())  # without it, a replay photo says nothing of fire
    assert again["replay"] == record["replay"] >= 1
    assert again["replay_dataset"]["data"] == {"dataset_version": built.version}
    assert again["replay_dataset"]["model_id"] == "tiny-v8"
    # a built dataset version as --data (e.g. `hazardscan relabel`'s copy): its training photos only
    from_built = teach(
        model, built.root, ["fire"], tmp_path / "built", fresh=True, replay=4, cpu_minutes=0,
        datasets=tmp_path / "ds", release_to=tmp_path / "taught-built",
    )  # fmt: skip
    built_train = {s.sha1 for s, side in load_manifest(built.root) if side == "train" and 0 in s.labels.class_id}
    chosen = (tmp_path / "built" / "dataset" / "manifest.jsonl").read_text().splitlines()
    assert {json.loads(line)["sha1"] for line in chosen if "teach-" in line} == built_train
    assert from_built["photos"] == len(built_train) and from_built["photos_left_out_as_val"] == 0
    # without --fresh a class the model has goes on from its own channels: untrained, it answers as before
    kept = teach(
        model, spec, ["fire"], tmp_path / "kept", replay=4, cpu_minutes=0,
        datasets_root=tmp_path / "sets", datasets=tmp_path / "ds", release_to=tmp_path / "taught-kept",
    )  # fmt: skip
    assert kept["fresh"] == [] and kept["continued"] == ["fire"] and record["continued"] == []
    rows = teach(  # --keep-others trains the taught rows alone: replay photos would teach them nothing
        model, spec, ["fire"], tmp_path / "rows", keep_others=True, cpu_minutes=0,
        datasets_root=tmp_path / "sets", datasets=tmp_path / "ds", release_to=tmp_path / "taught-rows",
    )  # fmt: skip
    assert rows["replay"] == 0 and kept["replay"] >= 1
    import onnxruntime as ort

    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)

    def raw(folder: Path) -> np.ndarray:
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])

    start, went_on, zeroed = raw(model), raw(tmp_path / "taught-kept"), raw(tmp_path / "taught-built")
    fire_row = 4  # (1, 4 box + 2 class rows, anchors): fire's scores, small on an untrained toy (about 1e-3)
    assert np.allclose(went_on[0, fire_row], start[0, fire_row], rtol=0.05, atol=1e-6)
    assert not np.allclose(zeroed[0, fire_row], start[0, fire_row], rtol=0.05, atol=1e-6)  # --fresh: its prior
    with pytest.raises(ValueError, match="no photo to train on or to calibrate"):  # not onnxruntime's own error
        teach(
            model, spec, ["fire"], tmp_path / "none", fresh=True, photos=0, replay=0, cpu_minutes=0.05,
            datasets_root=tmp_path / "sets", datasets=tmp_path / "ds", release_to=tmp_path / "none-model",
        )  # fmt: skip


def test_keep_others_freezes_all_but_the_last_class_convolutions():
    pytest.importorskip("ultralytics")
    from ultralytics.nn.tasks import DetectionModel

    from training.teach import keep_others_freeze

    names = list(DetectionModel("yolov8n.yaml", nc=3, verbose=False).state_dict())
    frozen = keep_others_freeze(names)
    prefixes = [f"model.{f}." for f in frozen]
    trainable = [n for n in names if not any(p in n for p in prefixes) and n.endswith(("weight", "bias"))]
    assert trainable == [f"model.22.cv3.{i}.2.{k}" for i in range(3) for k in ("weight", "bias")]
    assert list(range(22)) == frozen[:22] and "22.cv2.0.0" in frozen and "22.cv3.2.1" in frozen
    bn = [n.rsplit(".", 1)[0] for n in names if n.endswith("running_mean")]
    assert all(any(p in m for p in prefixes) for m in bn)  # every BatchNorm keeps its statistics


@pytest.mark.slow
def test_keep_others_moves_only_the_taught_rows(tmp_path: Path):
    """Ultralytics trains with the freeze entries and the row masks: the taught class's rows learn, every other
    weight and BatchNorm statistic of the start checkpoint comes out unchanged (up to the half precision in
    which Ultralytics saves its checkpoints)."""
    pytest.importorskip("ultralytics")
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from tests._builders import fire_only_dataset
    from training.teach import CpuBudget, _train

    built = fire_only_dataset(tmp_path)
    torch.manual_seed(0)
    net = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    net.names = {0: "fire", 1: "smoke"}
    start = tmp_path / "yolov8n_start.pt"
    torch.save({"model": net.eval(), "train_args": {"task": "detect", "imgsz": 64}, "epoch": -1}, start)
    card = {"input_size": [64, 64]}
    run = _train(start, built.root / "data.yaml", tmp_path / "o", card, 0.05, 1, 0, 10, 0.05, CpuBudget(0.05), [0])
    ckpt = torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)
    after = (ckpt.get("ema") or ckpt["model"]).float().state_dict()
    moved = []
    for name, before in net.state_dict().items():
        if not before.dtype.is_floating_point:
            continue
        if name.startswith("model.22.cv3.") and name.split(".")[4] == "2":  # a last class convolution
            assert torch.allclose(after[name][1], before[1], rtol=1e-3, atol=1e-4), name  # smoke's row: held
            moved.append(float((after[name][0] - before[0]).abs().max()))
        else:
            assert torch.allclose(after[name], before, rtol=1e-3, atol=1e-4), name
    assert len(moved) == 6 and max(moved) > 1e-2  # fire's rows learned


@pytest.mark.parametrize(
    ("start", "classes", "taught", "keep_others", "expected"),
    [
        ([], ["fire", "smoke", "person"], ["person"], True, [["fire", "smoke"], ["person"]]),  # added, rows only
        ([], ["fire", "smoke", "person"], ["person"], False, []),  # fine-tuned with the rest: one group
        ([], ["fire", "smoke"], ["smoke"], True, [["fire"], ["smoke"]]),  # re-taught (--fresh), rows only
        ([["fire"], ["person"]], ["fire", "person", "weld"], ["weld"], True, [["fire"], ["person"], ["weld"]]),
        ([["fire"], ["person"]], ["fire", "person", "weld"], ["weld"], False, [["fire", "weld"], ["person"]]),
        ([["fire"], ["person"]], ["fire", "weld"], ["weld"], False, []),  # person dropped: one group left
        (
            [["fire", "smoke"], ["person"]],
            ["fire", "smoke", "person"],
            ["person"],
            True,
            [["fire", "smoke"], ["person"]],
        ),
    ],
)
def test_label_groups_of_a_taught_model(start, classes, taught, keep_others, expected):
    from training.teach import label_groups

    assert label_groups(start, classes, taught, keep_others) == expected
