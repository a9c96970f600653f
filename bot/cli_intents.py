"""``atombot intents``: train, evaluate and try the intent classifier from the command line.

- ``atombot intents train [--data FILE] [--finetune [--recipe R]] [--out DIR]``
- ``atombot intents eval --train TRAIN.jsonl --test TEST.jsonl [--finetune] [--json]
  [--predictions OUT.jsonl] [--few-shot N]`` (test rows ``{"text", "label"}`` and/or
  multi-intent rows ``{"text", "labels": [...]}``)
- ``atombot intents predict [--json]`` (stdin: one message per line)
- ``atombot intents kinds [--data FILE] [--json]``: every task kind, where it comes from
  (built-in or ``file:line``) and its settings
- ``atombot intents versions | rollback VERSION | retrain``: each tenant's classifier
  versions (see :mod:`bot.cli_learning`)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _settings_defaults() -> tuple[Path | None, Path, str | None]:
    """``(intents file, classifier dir, encoder)`` from the environment (ATOMBOT_*)."""
    from bot.config import Settings

    settings = Settings()
    return settings.intents, settings.data_dir / "intents", settings.encoder


def _train(args: argparse.Namespace) -> int:
    from models.intents import FinetuneConfig, IntentClassifier, IntentsFileError, load_intents

    default_data, default_out, encoder = _settings_defaults()
    data: Path | None = args.data or default_data
    out: Path = args.out or default_out
    try:
        intents = load_intents(data)
    except IntentsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classifier = IntentClassifier.from_intents(
        intents,
        encoder=args.encoder or encoder,
        cache_dir=out / "onnx",
        finetune_encoder=args.finetune,
        finetune_config=(
            FinetuneConfig(recipe=args.recipe, epochs=args.epochs) if args.finetune else None
        ),
    )
    classifier.save(out)
    cal = classifier.calibration
    print(
        f"trained {classifier.info.mode} classifier on {classifier.info.examples} examples "
        f"in {classifier.info.train_seconds:.1f}s → {out}"
    )
    if cal.in_scope_accuracy is not None:
        print(
            f"out-of-scope threshold {cal.threshold:.3f} (cross-validated: in-scope accuracy "
            f"{cal.in_scope_accuracy:.3f}, OOS recall {cal.oos_recall:.3f})"
        )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from models.intents import FinetuneConfig, IntentClassifier, IntentsFileError, load_jsonl
    from models.intents.evaluate import (
        evaluate,
        evaluate_atomization,
        few_shot,
        format_atomization,
        load_eval_rows,
    )

    _, _, encoder = _settings_defaults()
    try:
        train_texts, train_labels = load_jsonl(args.train)
        rows = load_eval_rows(args.test)
    except (IntentsFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows.texts and not rows.multi_texts:
        print(f"error: {args.test}: no rows", file=sys.stderr)
        return 2
    test_texts, test_labels = rows.texts, rows.labels
    if args.few_shot:
        train_texts, train_labels = few_shot(train_texts, train_labels, args.few_shot)
    cache = args.cache or Path(".atombot-cache") / "onnx"
    classifier = IntentClassifier.train(
        train_texts,
        train_labels,
        encoder=args.encoder or encoder,
        cache_dir=cache,
        finetune_encoder=args.finetune,
        finetune_config=(
            FinetuneConfig(recipe=args.recipe, epochs=args.epochs) if args.finetune else None
        ),
        threads=args.threads,
    )
    report, predictions = (
        evaluate(classifier, test_texts, test_labels) if test_texts else (None, [])
    )
    atomized = (
        evaluate_atomization(classifier, rows.multi_texts, rows.multi_labels)
        if rows.multi_texts
        else None
    )
    if args.predictions:
        with args.predictions.open("w", encoding="utf-8") as handle:
            for text, label, (predicted, confidence) in zip(
                test_texts, test_labels, predictions, strict=True
            ):
                row = {
                    "text": text,
                    "label": label,
                    "predicted": predicted,
                    "confidence": round(confidence, 6),
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            if atomized is not None:
                for text, labels, got in zip(
                    rows.multi_texts, rows.multi_labels, atomized[1], strict=True
                ):
                    multi = {"text": text, "labels": labels, "predicted": got}
                    handle.write(json.dumps(multi, ensure_ascii=False) + "\n")
    if args.json:
        out: dict[str, Any] = report.as_dict() if report is not None else {}
        if atomized is not None:
            out["atomization"] = atomized[0].as_dict()
        print(json.dumps(out))
        return 0

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    if report is not None:
        print(f"mode:              {report.mode} ({len(train_texts)} training examples)")
        print(f"accuracy:          {pct(report.accuracy)} on {report.examples} test examples")
        print(f"in-scope accuracy: {pct(report.in_scope_accuracy)}")
        print(f"OOS recall:        {pct(report.oos_recall)}")
        print(f"train time:        {report.train_seconds:.1f}s")
        print(
            f"latency:           p50 {report.latency_p50_ms:.2f} ms, "
            f"p95 {report.latency_p95_ms:.2f} ms "
            f"({report.backend}, {args.threads} threads)"
        )
        print(f"throughput:        {report.throughput_per_s:.0f} messages/s (one batch)")
    if atomized is not None:
        for line in format_atomization(atomized[0]):
            print(line)
    return 0


def _spec_json(spec: Any) -> dict[str, Any]:
    return {
        "intent": spec.intent,
        "confidence": spec.confidence,
        "slots": spec.slots,
        "span": list(spec.span),
        "depends_on": list(spec.depends_on),
        "missing": list(spec.missing),
    }


def _predict(args: argparse.Namespace) -> int:
    from models.intents import IntentClassifier, IntentsFileError

    default_data, default_out, encoder = _settings_defaults()
    try:
        classifier = IntentClassifier.load_or_train(
            intents_path=args.data or default_data,
            cache_dir=args.model or default_out,
            encoder=args.encoder or encoder,
        )
    except IntentsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for raw in sys.stdin:
        message = raw.rstrip("\n")
        specs = classifier.parse(message, timezone=args.timezone)
        if args.json:
            print(
                json.dumps(
                    {"text": message, "tasks": [_spec_json(s) for s in specs]}, ensure_ascii=False
                )
            )
            continue
        print(message)
        if not specs:
            print("  (empty)")
        for index, spec in enumerate(specs):
            deps = f" depends_on={list(spec.depends_on)}" if spec.depends_on else ""
            missing = f" missing={list(spec.missing)}" if spec.missing else ""
            slots = json.dumps(spec.slots, ensure_ascii=False)
            print(f"  [{index}] {spec.intent} ({spec.confidence:.2f}){deps}{missing} {slots}")
        sys.stdout.flush()
    return 0


def _kinds(args: argparse.Namespace) -> int:
    from handlers.kinds import build_registry
    from models.intents import IntentsFileError, load_intents

    default_data, _, _ = _settings_defaults()
    try:
        registry = build_registry(load_intents(args.data or default_data))
    except IntentsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = [kind.describe() for kind in registry]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        flags = [row["mode"]]
        flags += [name for name in ("rateable", "regenerable", "produces") if row[name]]
        if not row["visible"]:
            flags.append("hidden")
        if not row["intent"]:
            flags.append("internal")
        if row["consumes"] != "none":
            flags.append(f"consumes={row['consumes']}")
        if row["max_tokens"]:
            flags.append(f"format={row['format']} max_tokens={row['max_tokens']}")
        print(f"{row['kind']}\t{row['origin']}\t{row['label']['en']} / {row['label']['zh']}")
        print(f"  {' '.join(flags)}")
        if row["slots"]:
            print(f"  slots: {', '.join(row['slots'])}")
        for slot, question in row["required"].items():
            print(f"  required {slot}: {question['en']} / {question['zh']}")
    return 0


#: Fine-tuning recipes of ``--recipe`` (see ``models.intents.finetune``); the first is the default.
RECIPES = ("auto", "contrastive", "cross_entropy")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``intents`` command (train / eval / predict / kinds) to the atombot CLI."""
    intents = subparsers.add_parser("intents", help="train, evaluate and try the intent classifier")
    sub = intents.add_subparsers(dest="intents_command", required=True)

    train = sub.add_parser("train", help="train the classifier from an intents file")
    train.add_argument(
        "--data", type=Path, help="intents YAML (default: ATOMBOT_INTENTS or the shipped file)"
    )
    train.add_argument(
        "--finetune", action="store_true", help="fine-tune the encoder too (slow on CPU)"
    )
    train.add_argument(
        "--out", type=Path, help="output directory (default: ATOMBOT_DATA_DIR/intents)"
    )
    train.add_argument(
        "--encoder", help="local sentence-encoder directory (default: all-MiniLM-L6-v2)"
    )
    train.add_argument("--epochs", type=int, help="fine-tuning epochs (default: by recipe)")
    train.add_argument(
        "--recipe",
        choices=RECIPES,
        default=RECIPES[0],
        help="fine-tuning recipe (default auto: contrastive pairs below 5,000 examples, "
        "cross-entropy from there on)",
    )
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="train on one JSONL file and score on another")
    ev.add_argument("--train", type=Path, required=True, help='JSONL rows {"text", "label"}')
    ev.add_argument(
        "--test",
        type=Path,
        required=True,
        help='JSONL rows {"text", "label"} (label "oos" = out of scope) and/or multi-intent '
        'rows {"text", "labels": [...]}: those report exact intent sequence, intent set and '
        "task count accuracy by number of requests",
    )
    ev.add_argument("--finetune", action="store_true", help="fine-tune the encoder too")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument(
        "--predictions", type=Path, help="write every test row with its prediction (JSONL)"
    )
    ev.add_argument(
        "--few-shot", type=int, metavar="N", help="train on N random examples per label"
    )
    ev.add_argument("--encoder", help="local sentence-encoder directory")
    ev.add_argument("--epochs", type=int, help="fine-tuning epochs")
    ev.add_argument("--recipe", choices=RECIPES, default=RECIPES[0], help="fine-tuning recipe")
    ev.add_argument("--threads", type=int, default=2, help="CPU threads for inference (default 2)")
    ev.add_argument("--cache", type=Path, help="where the exported ONNX encoder is cached")
    ev.set_defaults(func=_eval)

    pr = sub.add_parser("predict", help="print the task specs of each stdin line")
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    pr.add_argument(
        "--data", type=Path, help="intents YAML (default: ATOMBOT_INTENTS or the shipped file)"
    )
    pr.add_argument(
        "--model", type=Path, help="classifier directory (default: ATOMBOT_DATA_DIR/intents)"
    )
    pr.add_argument("--encoder", help="local sentence-encoder directory")
    pr.add_argument("--timezone", default="UTC", help="timezone for times (default UTC)")
    pr.set_defaults(func=_predict)

    kinds = sub.add_parser(
        "kinds", help="list every task kind, where it comes from and its settings"
    )
    kinds.add_argument(
        "--data", type=Path, help="intents YAML (default: ATOMBOT_INTENTS or the shipped file)"
    )
    kinds.add_argument("--json", action="store_true", help="print one JSON array")
    kinds.set_defaults(func=_kinds)

    from bot.cli_learning import register_versions

    register_versions(sub)
