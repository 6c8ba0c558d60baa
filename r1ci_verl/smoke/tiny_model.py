"""A tiny random Qwen2-style model and a locally trained tokenizer, for CPU tests and smoke runs.

No hub access: the tokenizer is a byte-level BPE trained on a small built-in corpus (plus any
extra texts) and given a Qwen-style chat template; the model is a randomly initialised
Qwen2ForCausalLM with head_dim 64 (vLLM's CPU attention rejects smaller heads). Both are saved
with `save_pretrained`, so the real loading code paths (`AutoTokenizer`/`AutoModel`) run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from reward_fns.protocol import RESULTS_HEADER, SYSTEM_PROMPT

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen2.5's template, reduced to plain text turns (no tool-call markup).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_BASE_CORPUS = [
    SYSTEM_PROMPT,
    RESULTS_HEADER,
    "```python\nprint(1 + 2)\n```\n",
    "```python\nimport math\nx = math.factorial(5)\nprint(x)\n```\n",
    "```python\nfor i in range(10):\n    print(i * i)\n```\n",
    "Let me compute this with code. The answer is <<<42>>>.",
    "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nZeroDivisionError: division by zero",
    "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } < > , . ; :",
    "True False None def return import from numpy sympy itertools collections",
]


def build_tiny_tokenizer(out_dir: str | Path, extra_texts: Iterable[str] = (), vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer and save it as a HF fast tokenizer in `out_dir`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = list(_BASE_CORPUS) + list(extra_texts)
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_model(
    out_dir: str | Path,
    extra_texts: Iterable[str] = (),
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
) -> Path:
    """Save a tokenizer and a random Qwen2ForCausalLM (float32) to `out_dir`; return the path."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    tokenizer = build_tiny_tokenizer(out_dir, extra_texts)
    if hidden_size % num_heads or hidden_size // num_heads != 64:
        raise ValueError(f"head_dim must be 64 (hidden_size={hidden_size}, num_heads={num_heads})")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        torch_dtype="float32",
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
