"""Fine-tuning mode: the encoder and the head trained together with cross-entropy.

The head is warm-started from the fast logistic-regression head, the encoder learns with a
small learning rate and the head with a larger one (linear warm-up then decay), with label
smoothing. Runs through ``accelerate`` so the same code uses a GPU when there is one. After
training, the classifier refits its logistic head on the new embeddings.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from accelerate import Accelerator

from models.intents.encoder import MAX_TOKENS, SentenceEncoder
from models.intents.head import SCALE, LinearHead, train_head

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters; ``epochs=None`` picks more epochs for smaller data sets."""

    epochs: int | None = None
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    label_smoothing: float = 0.1
    warmup: float = 0.06
    seed: int = 0
    max_steps: int | None = None


def auto_epochs(n_examples: int) -> int:
    """Enough passes for roughly 1,500 optimiser steps, between 3 and 30 epochs."""
    return max(3, min(30, math.ceil(1500 * 32 / max(1, n_examples))))


def finetune(
    encoder: SentenceEncoder,
    texts: list[str],
    labels: list[str],
    config: FinetuneConfig | None = None,
) -> LinearHead:
    """Fine-tune ``encoder`` in place on ``(texts, labels)``; return the jointly trained head.

    Callers usually refit a logistic head on the fine-tuned embeddings afterwards.
    """
    cfg = config or FinetuneConfig()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    started = time.perf_counter()
    head0 = train_head(encoder.encode(texts), labels)
    classes = head0.labels
    index = {label: i for i, label in enumerate(classes)}
    targets = torch.tensor([index[label] for label in labels], dtype=torch.long)

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    module = encoder.module
    layer = head0.to_torch()
    epochs = cfg.epochs or auto_epochs(len(texts))
    steps_per_epoch = math.ceil(len(texts) / cfg.batch_size)
    total = epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    optimizer = torch.optim.AdamW(
        [
            {"params": module.parameters(), "lr": cfg.encoder_lr},
            {"params": layer.parameters(), "lr": cfg.head_lr},
        ],
        weight_decay=0.01,
    )
    warmup = max(1, int(cfg.warmup * total))

    def schedule(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / total)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    module, layer, optimizer, scheduler = accelerator.prepare(module, layer, optimizer, scheduler)
    tokenizer = encoder._tokenizer
    order = list(range(len(texts)))
    step = 0
    module.train()
    with torch.enable_grad():
        for epoch in range(epochs):
            random.shuffle(order)
            for start in range(0, len(order), cfg.batch_size):
                if step >= total:
                    break
                batch = order[start : start + cfg.batch_size]
                enc = tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                ).to(accelerator.device)
                emb = module(enc["input_ids"], enc["attention_mask"])
                loss = torch.nn.functional.cross_entropy(
                    layer(emb * SCALE),
                    targets[batch].to(accelerator.device),
                    label_smoothing=cfg.label_smoothing,
                )
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(module.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
            logger.info(
                "fine-tune epoch %d/%d done after %.0fs",
                epoch + 1,
                epochs,
                time.perf_counter() - started,
            )
    trained = accelerator.unwrap_model(module)
    encoder.module = trained.to("cpu")
    encoder.refresh()
    return LinearHead.from_torch(accelerator.unwrap_model(layer).to("cpu"), classes)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (for reproducible benchmarks)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
