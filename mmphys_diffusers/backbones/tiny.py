"""Offline building blocks for the named tiny configs ("tiny-cogvideox", "tiny-wan").

Nothing here downloads anything. Two tokenizers are built with the `tokenizers` library:

- `build_byte_tokenizer`: byte-level, every UTF-8 caption tokenises, no corpus needed (the tiny
  test configs);
- `build_word_tokenizer`: one id per lower-cased word of a closed vocabulary (a caption grammar),
  so each word reaches the text encoder as one token: a model trained on it can tell "red" from
  "green" from a single embedding instead of a byte pattern spread over several positions.

The models are randomly initialised from small configs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable

import torch

from ..errors import MMPhysInputError

# T5-style special token ids: pad=0, eos=1, unk=2; then the 256 byte symbols.
TINY_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
TINY_VOCAB_SIZE = len(TINY_SPECIAL_TOKENS) + 256


def build_byte_tokenizer(model_max_length: int = 64):
    """A byte-level T5-like tokenizer: ids 0..2 are pad/eos/unk, 3..258 the 256 bytes, eos appended.

    Returns a `transformers` fast tokenizer that round-trips through `save_pretrained`/`from_pretrained`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(TINY_SPECIAL_TOKENS)}
    # ByteLevel maps each byte to one printable unicode symbol, so a BPE without merges is a byte tokenizer.
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def _word_normalizer_and_pre_tokenizer():
    from tokenizers import normalizers, pre_tokenizers

    # lower-case, then words and runs of punctuation ("(two" -> "(", "two")
    return normalizers.Lowercase(), pre_tokenizers.Whitespace()


def caption_words(texts: Iterable[str]) -> list[str]:
    """The sorted distinct words of `texts`, split exactly as `build_word_tokenizer` splits them."""
    normalizer, pre_tokenizer = _word_normalizer_and_pre_tokenizer()
    words = {w for text in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))}
    return sorted(words)


def build_word_tokenizer(vocabulary: Iterable[str], model_max_length: int = 64):
    """A word-level T5-like tokenizer: ids 0..2 are pad/eos/unk, then one id per word; eos appended.

    Args:
        vocabulary: texts or words; every word in them (see `caption_words`) gets an id. Words
            outside it tokenise to ``<unk>``.
        model_max_length: tokens per prompt, eos included (the pipelines' default sequence length).

    Returns a `transformers` fast tokenizer that round-trips through `save_pretrained`/`from_pretrained`.
    """
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    words = caption_words(vocabulary)
    if not words:
        raise MMPhysInputError("build_word_tokenizer: the vocabulary is empty; expected texts or words")
    vocab = {token: index for index, token in enumerate(TINY_SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = _word_normalizer_and_pre_tokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def tiny_t5_config_kwargs(**overrides) -> dict:
    """Config kwargs shared by the tiny T5 / UMT5 text encoders."""
    kwargs = dict(
        vocab_size=TINY_VOCAB_SIZE,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    kwargs.update(overrides)
    return kwargs


@contextmanager
def seeded(seed: int):
    """Fork the global CPU RNG and seed it, so tiny weights depend on `seed` only (caller's RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
