"""Generation throughput: one ``model.generate()`` per task vs. atombot's batching backend.

Same model, same prompts, same per-task token budgets, one run:

(a) naive: each task in sequence with a plain ``model.generate`` call (what a typical bot
    does), and
(b) ``HFGenerator`` with 1, 4, 16 and 64 tasks in flight (each task one ``generate`` call,
    the way the worker calls it).

Prints tokens/s, per-task latency p50/p95 and the throughput ratio to (a). Weights are
random, so nothing is downloaded; speed does not depend on the weights' values.

    python benchmarks/generation.py --model tiny                      # CPU, tiny model
    python benchmarks/generation.py --arch qwen2.5-0.5b --device cuda  # GPU, real shape
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.generation.base import GenerationRequest
from models.generation.hf import HFGenerator
from models.generation.tiny import build_tiny_model

#: Shapes of real models (Hugging Face config values), instantiated with random weights.
ARCHS: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
    "qwen2.5-1.5b": {
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
}

TOPICS = (
    "the budget review meeting tomorrow morning",
    "the new customer contract and the invoice",
    "a short reply to the client about the release date",
    "今天的项目会议和下周的计划",
    "the bug fix deploy and the test report for the team",
    "an update to the manager on the sales report",
)
BUDGETS = (16, 32, 64, 128)


@dataclass(frozen=True)
class Task:
    """One benchmark task: a chat prompt and its token budget."""

    messages: tuple[dict[str, str], ...]
    max_new_tokens: int


def make_tasks(count: int, scale: float) -> list[Task]:
    """Mixed prompt lengths and mixed token budgets (16..128 tokens, times ``scale``)."""
    tasks = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        context = " ".join([topic] * (1 + (i * 7) % 9))
        text = f"please draft an email about {topic}. context: {context}"
        budget = max(1, int(BUDGETS[(i * 5) % len(BUDGETS)] * scale))
        tasks.append(Task(({"role": "user", "content": text},), budget))
    return tasks


@dataclass
class Run:
    """The outcome of one way of running all tasks."""

    name: str
    seconds: float
    tokens: int
    latencies: list[float]

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of wall time."""
        return self.tokens / self.seconds

    def percentile(self, q: float) -> float:
        """Per-task latency percentile in seconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_model(args: argparse.Namespace, directory: Path) -> Path:
    """The tiny model, or a real architecture with random weights (tokenizer from tiny.py)."""
    if args.arch is None:
        return build_tiny_model(directory, hidden_size=args.hidden, num_layers=args.layers)
    import torch

    transformers: Any = importlib.import_module("transformers")
    shape = ARCHS[args.arch]
    # The word-level test tokenizer, sized to the architecture's vocabulary.
    build_tiny_model(directory, vocab_words=shape["vocab_size"] - 6)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    config = transformers.Qwen2Config(
        **shape,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = transformers.Qwen2ForCausalLM(config).to(dtype)
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    for stale in directory.glob("*.safetensors"):
        stale.unlink()
    model.save_pretrained(directory)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return directory


def run_naive(path: Path, tasks: list[Task], device: str, warmup: int) -> Run:
    """Each task alone with ``model.generate`` (greedy), one after the other."""
    import torch

    transformers: Any = importlib.import_module("transformers")
    on_cuda = device.startswith("cuda")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.bfloat16 if on_cuda else torch.float32
    ).to(device)
    model.eval()
    special = set(tokenizer.all_special_ids)

    def one(task: Task) -> int:
        text = tokenizer.apply_chat_template(
            list(task.messages), tokenize=False, add_generation_prompt=True
        )
        inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt").to(device)
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=task.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[0, inputs["input_ids"].shape[1] :].tolist()
        tokenizer.decode(new, skip_special_tokens=True)
        return sum(1 for t in new if t not in special)

    for task in tasks[:warmup]:
        one(task)
    latencies, tokens = [], 0
    start = time.perf_counter()
    for task in tasks:
        began = time.perf_counter()
        tokens += one(task)
        latencies.append(time.perf_counter() - began)
    seconds = time.perf_counter() - start
    return Run("naive generate(), sequential", seconds, tokens, latencies)


async def run_backend(generator: HFGenerator, tasks: list[Task], concurrency: int) -> Run:
    """All tasks through the backend with at most ``concurrency`` in flight."""
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    tokens = 0

    async def one(task: Task) -> None:
        nonlocal tokens
        async with slots:
            began = time.perf_counter()
            result = await generator.generate(
                GenerationRequest(messages=task.messages, max_new_tokens=task.max_new_tokens),
                on_progress=lambda n, text: None,
            )
            latencies.append(time.perf_counter() - began)
            tokens += result.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(one(task) for task in tasks))
    seconds = time.perf_counter() - start
    return Run(f"atombot backend, {concurrency:>2} in flight", seconds, tokens, latencies)


def describe_machine(device: str) -> str:
    """CPU model and cores, or the GPU name."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"CPU {cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


async def main(args: argparse.Namespace) -> None:
    """Build the model, run the naive baseline, then the backend at each concurrency."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    levels = [int(c) for c in args.concurrency.split(",")]
    tasks = make_tasks(args.tasks, args.scale)
    with tempfile.TemporaryDirectory(prefix="atombot-bench-") as tmp:
        path = build_model(args, Path(tmp) / "model")
        print(f"machine: {describe_machine(args.device)}")
        label = args.arch or f"tiny (hidden {args.hidden}, {args.layers} layers)"
        budget = sum(t.max_new_tokens for t in tasks)
        print(f"model: {label}, random weights; {len(tasks)} tasks, {budget} tokens budgeted")
        runs = [run_naive(path, tasks, args.device, args.warmup)]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        generator = HFGenerator(
            str(path), device=args.device, max_batch=max(levels), engine=args.engine
        )
        await generator.start()
        print(f"backend engine: {generator.engine_name}")
        await asyncio.gather(
            *(
                generator.generate(
                    GenerationRequest(messages=t.messages, max_new_tokens=t.max_new_tokens)
                )
                for t in tasks[: max(args.warmup, 1) * 4]
            )
        )
        for level in levels:
            runs.append(await run_backend(generator, tasks, level))
        await generator.close()
    base = runs[0]
    print(f"{'':34}{'tokens':>8}{'seconds':>9}{'tok/s':>9}{'p50 s':>8}{'p95 s':>8}{'ratio':>7}")
    for run in runs:
        print(
            f"{run.name:34}{run.tokens:8d}{run.seconds:9.2f}{run.tokens_per_s:9.1f}"
            f"{run.percentile(0.5):8.3f}{run.percentile(0.95):8.3f}"
            f"{run.tokens_per_s / base.tokens_per_s:6.1f}x"
        )
    mean_latency = statistics.mean(base.latencies)
    print(f"naive mean latency {mean_latency:.3f} s; ratio = tok/s relative to naive sequential")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", choices=["tiny"], default="tiny")
    parser.add_argument("--arch", choices=sorted(ARCHS), default=None)
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    parser.add_argument("--engine", choices=["auto", "cb", "step"], default="auto")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies token budgets")
    parser.add_argument("--hidden", type=int, default=64, help="tiny model width")
    parser.add_argument("--layers", type=int, default=2, help="tiny model depth")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
