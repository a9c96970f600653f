"""Chat messages to prompt token ids, with the tokenizer's chat template when it has one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer declares a chat template (else prompts are plain role lines)."""
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_ids(tokenizer: Any, messages: Iterable[dict[str, str]], *, plain: bool) -> list[int]:
    """Token ids of the chat prompt: the chat template with the generation prompt, or (with
    ``plain``) a "role: content" line per message and an open "assistant:" line."""
    messages = list(messages)
    if plain:
        text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        return list(tokenizer(text).input_ids)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens ``text`` takes (exact, from the tokenizer; about 4 characters each without one)."""
    if tokenizer is None:
        return max(1, len(text) // 4)
    return len(tokenizer(text, add_special_tokens=False).input_ids)
