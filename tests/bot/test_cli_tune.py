"""``atombot tune``: a LoRA adapter trained on what `feedback export` writes lowers the loss,
loads back through ATOMBOT_ADAPTER and changes what the model writes; bad input is refused and
writes nothing."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import build_generator
from bot.cli import build_arg_parser
from bot.config import Settings
from bot.export import sft_rows, write_rows
from models.generation.base import GenerationRequest
from models.generation.hf import HFGenerator
from storage.repo.exports import RatedResult

TOPICS = [
    "budget",
    "report",
    "plan",
    "contract",
    "invoice",
    "release",
    "product",
    "project",
    "meeting",
    "deadline",
    "schedule",
    "proposal",
]
SYSTEM = "you draft email"
QUESTION = "draft an email to the team about the budget"


def exported_sft(path: Path) -> Path:
    """What `atombot feedback export --format sft` writes for a dozen 👍-rated drafts."""
    results = [
        RatedResult(
            task_id=i,
            kind="email.draft",
            platform="slack",
            tenant="T1",
            channel="C1",
            prompt=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"draft an email to the team about the {topic}"},
            ],
            result=f"hello team , the {topic} is ready for review . thanks",
            up=1,
            down=0,
            first_attempt=i,
            wrong_kind=0,
            variant=None,
            created_at=datetime.now(UTC),
        )
        for i, topic in enumerate(TOPICS, 1)
    ]
    with path.open("w", encoding="utf-8") as handle:
        write_rows(handle, sft_rows(results).rows)
    return path


def run_tune(*args: str) -> int:
    """``atombot tune ARGS`` through the real parser and command (not ``main``, which also
    configures the process's logging for good)."""
    parsed = build_arg_parser().parse_args(["tune", *args])
    return int(parsed.func(parsed, Settings()))


@dataclass
class Tuned:
    code: int
    printed: str
    data: Path
    out: Path


@pytest.fixture(scope="module")
def tuned(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    """One `atombot tune --method sft` run on the tiny model (shared: it trains)."""
    work = tmp_path_factory.mktemp("tune")
    data = exported_sft(work / "sft.jsonl")
    out = work / "adapters" / "sft-1"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(printed):
        # One thread per process: the test machine's few cores are shared.
        env.setenv("OMP_NUM_THREADS", "1")
        code = run_tune(
            "--method", "sft", "--data", str(data), "--model", str(tiny_model),
            "--out", str(out), "--max-steps", "24", "--lr", "5e-3", "--logging-steps", "2",
        )  # fmt: skip
    return Tuned(code=code, printed=printed.getvalue(), data=data, out=out)


@pytest.mark.slow
def test_tune_lowers_the_training_loss_and_saves_the_adapter_with_its_manifest(
    tuned: Tuned, tiny_model: Path
) -> None:
    assert tuned.code == 0
    manifest = json.loads((tuned.out / "manifest.json").read_text())
    curve = [point["loss"] for point in manifest["loss_curve"]]

    assert len(curve) >= 5
    assert curve[-1] < curve[0] / 2
    assert manifest["loss_start"] == curve[0] and manifest["loss_end"] == curve[-1]
    assert manifest["method"] == "sft" and manifest["rows"] == len(TOPICS) == 12
    assert manifest["steps"] == 24
    assert manifest["base_model"] == str(tiny_model.resolve())
    assert manifest["data_file"] == str(tuned.data.resolve())
    assert len(manifest["data_sha256"]) == 64
    assert manifest["hyperparameters"]["learning_rate"] == 5e-3
    assert manifest["hyperparameters"]["max_steps"] == 24
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert manifest["atombot_version"] and manifest["versions"]["trl"]
    assert (tuned.out / "adapter_config.json").is_file()
    assert (tuned.out / "adapter_model.safetensors").is_file()
    # Only the finished adapter is left: no staging folder, no trainer checkpoints.
    assert [p.name for p in tuned.out.parent.iterdir()] == ["sft-1"]
    assert f"ATOMBOT_ADAPTER={tuned.out}" in tuned.printed
    assert f"loss {curve[0]:.3f} → {curve[-1]:.3f}" in tuned.printed


@pytest.mark.slow
async def test_the_adapter_loads_through_atombot_adapter_and_changes_greedy_output(
    tuned: Tuned, tiny_model: Path, tmp_path: Path, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOMBOT_MODEL", str(tiny_model))
    monkeypatch.setenv("ATOMBOT_ADAPTER", str(tuned.out))
    monkeypatch.setenv("ATOMBOT_DEVICE", "cpu")
    request = GenerationRequest(
        messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}),
        max_new_tokens=8,
    )

    adapted = build_generator(Settings(data_dir=tmp_path))
    base = HFGenerator(str(tiny_model), device="cpu")
    texts = []
    for generator in (adapted, base):
        await generator.start()
        try:
            texts.append((await generator.generate(request)).text)
        finally:
            await generator.close()

    assert isinstance(adapted, HFGenerator) and adapted.adapter == tuned.out
    adapted_text, base_text = texts
    assert adapted_text != base_text
    assert adapted_text.startswith("hello team , the")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "is empty"),
        ('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "con', "line 1"),
        ('{"prompt": "p"}\n', "line 1: messages must be a non-empty list"),
    ],
)
def test_a_bad_data_file_is_refused_with_one_line_and_nothing_is_written(
    tiny_model: Path,
    tmp_path: Path,
    no_env: None,
    capsys: pytest.CaptureFixture[str],
    content: str,
    needle: str,
) -> None:
    data = tmp_path / "export.jsonl"
    data.write_text(content)
    out = tmp_path / "adapters" / "new"

    code = run_tune(
        "--method", "sft", "--data", str(data), "--model", str(tiny_model), "--out", str(out)
    )

    stderr = capsys.readouterr().err.strip()
    assert code == 2
    assert stderr.startswith("error: ") and "\n" not in stderr and needle in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]


def test_an_unwritable_out_is_refused_and_nothing_is_written(
    tiny_model: Path, tmp_path: Path, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = exported_sft(tmp_path / "sft.jsonl")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "adapter"

    code = run_tune(
        "--method", "sft", "--data", str(data), "--model", str(tiny_model), "--out", str(out)
    )

    stderr = capsys.readouterr().err.strip()
    assert code == 2
    assert stderr.startswith(f"error: --out {str(out)!r} cannot be written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "sft.jsonl"]


def test_an_existing_adapter_is_not_overwritten(
    tiny_model: Path, tmp_path: Path, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = exported_sft(tmp_path / "sft.jsonl")
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "manifest.json").write_text("{}")

    code = run_tune(
        "--method", "sft", "--data", str(data), "--model", str(tiny_model), "--out", str(out)
    )

    assert code == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


def test_a_symlink_as_out_is_refused_before_training(
    tiny_model: Path, tmp_path: Path, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = exported_sft(tmp_path / "sft.jsonl")
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "adapter"
    out.symlink_to(tmp_path / "elsewhere")

    code = run_tune(
        "--method", "sft", "--data", str(data), "--model", str(tiny_model), "--out", str(out)
    )

    stderr = capsys.readouterr().err.strip()
    assert code == 2
    assert stderr == f"error: --out {str(out)!r} is a symbolic link; give a real directory path"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_base_model_that_is_not_on_disk_is_refused(
    tmp_path: Path, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = exported_sft(tmp_path / "sft.jsonl")

    code = run_tune(
        "--method", "sft", "--data", str(data), "--model", "atombot-test/not-cached",
        "--out", str(tmp_path / "adapter"),
    )  # fmt: skip

    assert code == 2
    assert "neither a local directory nor in the Hugging Face cache" in capsys.readouterr().err
    assert not (tmp_path / "adapter").exists()


def test_an_unknown_method_is_refused_by_the_parser(
    tmp_path: Path, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = exported_sft(tmp_path / "sft.jsonl")

    with pytest.raises(SystemExit) as exited:
        run_tune("--method", "ppo", "--data", str(data), "--out", str(tmp_path / "adapter"))

    assert exited.value.code == 2
    assert "invalid choice: 'ppo'" in capsys.readouterr().err
    assert not (tmp_path / "adapter").exists()
