"""``atombot intents train | eval | predict`` through the real argument parser."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from bot.cli_intents import register
from models.intents.finetune import Recipe

TRAIN = [
    ("cancel #4", "task.cancel"), ("stop task 7", "task.cancel"), ("abort it", "task.cancel"),
    ("kill task 9", "task.cancel"), ("help", "help"), ("what can you do", "help"),
    ("how do I use you", "help"), ("show me the commands", "help"), ("tell me a joke", "oos"),
    ("weather in Paris", "oos"), ("order a pizza", "oos"), ("who won the game", "oos"),
]  # fmt: skip
TEST = [
    ("cancel task 12", "task.cancel"),
    ("what are your features", "help"),
    ("sing a song", "oos"),
]


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="atombot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": lbl}) + "\n" for t, lbl in rows))
    return path


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def test_eval_prints_one_json_object_and_writes_predictions(
    tmp_path: Path, onnx_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = _jsonl(tmp_path / "train.jsonl", TRAIN), _jsonl(tmp_path / "test.jsonl", TEST)
    out = tmp_path / "pred.jsonl"
    code = _run("intents", "eval", "--train", str(train), "--test", str(test), "--json",
                "--predictions", str(out), "--cache", str(onnx_cache))  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "in_scope_accuracy", "oos_recall", "train_seconds", "latency_p50_ms",
            "latency_p95_ms"} <= set(report)  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == [t for t, _ in TEST]
    assert all({"label", "predicted", "confidence"} <= set(r) for r in rows)


def test_eval_reports_a_bad_row_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "help", "label": "help"}\nnot json\n')
    code = _run("intents", "eval", "--train", str(train), "--test", str(train))
    assert code == 2
    assert "line 2" in capsys.readouterr().err


def test_train_then_predict_prints_task_specs_per_stdin_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "intents.yaml"
    data.write_text(
        "nlu:\n"
        + "".join(
            f"  - intent: {label}\n    examples: |\n"
            + "".join(f"      - {t}\n" for t, lbl in TRAIN if lbl == label)
            for label in ("task.cancel", "help", "oos")
        )
    )
    assert _run("intents", "train", "--data", str(data), "--out", str(tmp_path / "model")) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("cancel #12\n\n"))
    assert (
        _run(
            "intents", "predict", "--json", "--data", str(data), "--model", str(tmp_path / "model")
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["tasks"][0]["intent"] == "task.cancel"
    assert lines[0]["tasks"][0]["slots"] == {"task_ids": [12]}
    assert lines[1]["tasks"] == []


def test_train_rejects_a_malformed_intents_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "intents.yaml"
    data.write_text("nlu:\n  - intent: help\n    examples: |\n      help\n")
    assert _run("intents", "train", "--data", str(data), "--out", str(tmp_path / "model")) == 2
    assert "line 4" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["contrastive", "cross_entropy"])
def test_finetune_smoke_run_saves_an_encoder_and_reloads_identically(
    tmp_path: Path, recipe: Recipe
) -> None:
    from models.intents import FinetuneConfig, IntentClassifier
    from models.intents.encoder import SentenceEncoder, default_encoder_path

    texts, labels = [t for t, _ in TRAIN], [lbl for _, lbl in TRAIN]
    tuned = IntentClassifier.train(
        texts, labels, cache_dir=tmp_path / "onnx", finetune_encoder=True,
        finetune_config=FinetuneConfig(recipe=recipe, epochs=1, batch_size=4, max_steps=3),
    )  # fmt: skip
    assert tuned.info.extra["recipe"] == recipe
    # Three optimiser steps are enough to move the weights away from the packaged ones.
    assert tuned.encoder.digest != SentenceEncoder(default_encoder_path(), backend="torch").digest
    tuned.save(tmp_path / "model")
    loaded = IntentClassifier.load(tmp_path / "model")
    assert (tmp_path / "model" / "encoder" / "model.safetensors").exists()
    assert loaded.predict(texts) == tuned.predict(texts)
