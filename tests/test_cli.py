from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from _builders import encode, scene

from inference_service import cli

RED = (255, 0, 0)


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    fire = tmp_path / "fire.jpg"
    fire.write_bytes(encode(scene(256, 256, [(128, 64, 192, 128, RED)]), "JPEG", quality=95))
    text = tmp_path / "notes.txt"
    text.write_text("not a photo", encoding="utf-8")
    return [fire, text]


def test_detect_json_and_evidence(tiny_model_dir: Path, photos: list[Path], tmp_path: Path, capsys):
    out_dir = tmp_path / "evidence"
    code = cli.main(["detect", *map(str, photos), "--model", str(tiny_model_dir), "--json", "--annotate", str(out_dir)])
    assert code == 1  # one photo failed
    records = json.loads(capsys.readouterr().out)
    assert records[0]["photo"] == str(photos[0]) and records[0]["hazards"][0]["id"] == "FIRE-001"
    assert "text" in records[1]["error"]
    assert (out_dir / "fire.evidence.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_detect_table(tiny_model_dir: Path, photos: list[Path], capsys):
    assert cli.main(["detect", str(photos[0]), "--model", str(tiny_model_dir), "--min-confidence", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "FIRE-001" in out and "现场明火" in out and "fire" in out


def test_bad_model_exits_2(tmp_path: Path, photos: list[Path], capsys):
    assert cli.main(["detect", str(photos[0]), "--model", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_subcommands_register_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    (tmp_path / "fake_trainer.py").write_text(
        "def add_arguments(p):\n    p.add_argument('--epochs', type=int)\n"
        "def run(args):\n    print('trained', args.epochs)\n    return 0\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    command = cli.Command("fake-train", "train a model", "fake_trainer:add_arguments", "fake_trainer:run")
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, command])
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "fake_trainer" not in sys.modules  # listing other commands imports nothing of theirs
    assert "fake-train" in capsys.readouterr().out
    assert cli.main(["fake-train", "--epochs", "3"]) == 0
    assert "trained 3" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "level"), [([], logging.WARNING), (["-v"], logging.DEBUG)])
def test_serve_sets_the_services_own_log_level(
    argv: list[str], level: int, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """HAZARDSCAN_LOG_LEVEL silences the service's own lines too, not only uvicorn's (-v still shows everything)."""
    import uvicorn

    served: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: served.append(server.config))
    monkeypatch.setenv("HAZARDSCAN_LOG_LEVEL", "warning")
    monkeypatch.setenv("HAZARDSCAN_DATA_DIR", str(tmp_path))
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.INFO)  # as main's basicConfig leaves it outside pytest
        assert cli.main([*argv, "serve", "--model", str(tiny_model_dir)]) == 0
        assert root.level == level and served[0].log_level == "warning"
    finally:
        root.setLevel(before)


@pytest.mark.parametrize(
    "command", [["serve"], ["scan", "--cameras", "cams.yaml"], ["events", "prune", "--older-than-days", "9"]]
)
def test_a_setting_that_does_not_parse_is_one_line_per_variable_not_a_traceback(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cams.yaml").write_text("cameras:\n  - {id: a, url: frames}\n", encoding="utf-8")
    monkeypatch.delenv("HAZARDSCAN_EVENTS_DB", raising=False)
    monkeypatch.setenv("HAZARDSCAN_DEADLINE_DAYS_HIGH", "three")
    monkeypatch.setenv("HAZARDSCAN_LOG_LEVEL", "loud")
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "HAZARDSCAN_DEADLINE_DAYS_HIGH='three': Input should be a valid integer" in err
    if command == ["serve"]:
        assert "HAZARDSCAN_LOG_LEVEL='LOUD': Input should be 'DEBUG'" in err
    assert "Traceback" not in err and not list(tmp_path.glob("*.db"))
