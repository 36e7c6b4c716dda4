"""Tokenizers (jieba words, characters, whitespace) with POS tags, and the vocabulary."""

from .tokenize import TOKENIZERS, Tokenizer, get_tokenizer, register_tokenizer
from .vocab import PAD, UNK, Vocab

__all__ = ["TOKENIZERS", "Tokenizer", "get_tokenizer", "register_tokenizer", "Vocab", "PAD", "UNK"]
