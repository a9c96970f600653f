"""A tiny random-weight causal LM with its own tokenizer, built locally for tests and benchmarks.

Nothing is downloaded: the tokenizer is built from a small built-in English + Chinese word list
with the ``tokenizers`` library and the model is a 2-layer Llama with random weights. Its
output is nonsense, but it has the shape of a real chat model (special tokens, a chat template,
a KV cache), so every code path of :class:`models.generation.hf.HFGenerator` runs against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_ENGLISH_TEXT = """
the a an and or but if then so of to in on at by for with from about into over after
before is are was were be been being have has had do does did will would can could should
may might i you he she it we they me him her us them my your his its our their this that
these those what which who whom whose when where why how all any both each few more most
other some such no not only own same than too very just now also again here there up down
out off once email reply summary thread channel message meeting team project report update
review plan draft send write read check share ask answer thank please today tomorrow week
month year morning afternoon evening time date day hour minute deadline schedule call note
task list customer client manager colleague budget sales product release issue bug fix
test deploy server data model user account price order invoice contract offer proposal
feedback result good great new old first last next long short big small high low early
late important urgent clear simple quick final open closed ready done key main best better
decision action owner point item question idea problem risk goal status progress support
help need want know think see make take give get go come say tell work use find keep let
put show try call start stop finish move change agree discuss confirm approve reject
cancel remind user assistant system hello hi yes ok ignore previous instructions reveal
prompt owners items thanks
"""
#: Weight scale; larger than the usual 0.02 so the layers, not just the current token
#: embedding, shape the next token (outputs then differ from prompt to prompt).
INIT_STD = 0.2
_PUNCTUATION = ".,!?:;'\"()-"

_CHINESE = list(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"
    "家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本"
    "见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己"
    "邮件回复总结会议项目报告客户经理团队提醒谢请今天明天周计划问题决定行动负责进度预算合同发送"
)


def build_tiny_model(
    path: Path,
    *,
    vocab_words: int = 600,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny random-weight chat model and its tokenizer to ``path``; return ``path``.

    The same ``seed`` gives the same weights and vocabulary, so outputs are reproducible.
    ``vocab_words`` is the number of ordinary word tokens (the built-in words, topped up with
    synthetic ``w<N>`` words). ``HFGenerator(str(path))`` loads the result.
    """
    import importlib

    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    transformers: Any = importlib.import_module("transformers")

    words: list[str] = []
    for word in [*_ENGLISH_TEXT.split(), *_PUNCTUATION, *_CHINESE]:
        if word not in words:
            words.append(word)
    words = words[:vocab_words]
    words.extend(f"w{i}" for i in range(vocab_words - len(words)))
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}

    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    # Chinese has no spaces: every CJK character is its own token; punctuation is split off.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"[\u4e00-\u9fff]|[^\w\s]"), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|im_end|>",
        additional_special_tokens=["</s>", "<|im_start|>"],
        padding_side="left",
        model_max_length=2048,
    )
    fast.chat_template = CHAT_TEMPLATE

    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=INIT_STD,
        tie_word_embeddings=False,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["<|im_end|>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
        with torch.no_grad():
            embeddings = model.get_input_embeddings().weight
            head = model.get_output_embeddings().weight
            # Larger weights than the default init give well-separated logits, so greedy
            # decoding does not hinge on float rounding; special tokens are made unlikely
            # so the nonsense output is made of words and runs to max_new_tokens.
            embeddings.normal_(0.0, 1.0)
            head.normal_(0.0, 0.5)
            head[: len(SPECIAL_TOKENS)] *= 0.05
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<pad>"], bos_token_id=vocab["<s>"]
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path
