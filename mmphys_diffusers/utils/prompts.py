"""What a model will not read of a prompt: words its tokenizer maps to ``<unk>``, tokens past its limit.

A tiny model trained on a closed caption grammar (the bundled MMPhysVideo-Tiny models) silently reads
unknown words as ``<unk>`` and drops everything past its sequence length; `mmphys generate` reports both.
"""

from __future__ import annotations


def unknown_words(tokenizer, prompt: str) -> list[str]:
    """The pieces of `prompt` that `tokenizer` maps to its unknown token, in order (needs a fast tokenizer)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not getattr(tokenizer, "is_fast", False):
        return []
    encoding = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    return [prompt[start:end] for token, (start, end) in zip(encoding.input_ids, encoding.offset_mapping) if token == unk]


def prompt_warnings(tokenizer, prompt: str, max_sequence_length: int) -> list[str]:
    """Human-readable warnings about the parts of `prompt` the model cannot see (empty when it sees all of it)."""
    warnings = []
    unknown = unknown_words(tokenizer, prompt)
    if unknown:
        warnings.append(f"words outside the model's vocabulary, read as {tokenizer.unk_token}: {', '.join(dict.fromkeys(unknown))}")
    ids = tokenizer(prompt).input_ids
    if len(ids) > max_sequence_length:
        kept = tokenizer.decode(ids[: max_sequence_length - 1], skip_special_tokens=True)
        warnings.append(f"the prompt has {len(ids)} tokens and the model reads {max_sequence_length}; it sees only: {kept!r}")
    return warnings
