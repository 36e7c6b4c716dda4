"""Tokenizers by name. Each splits text into tokens, tags them with a part of speech and joins them back.

Whitespace is never a token: token lists are stored joined by one space (the `tokens_a` column).
"""

from __future__ import annotations

import abc
import functools
import logging
import re

from ..registry import Registry
from .vocab import UNK

TOKENIZERS: Registry[type["Tokenizer"]] = Registry("tokenizer")
register_tokenizer = TOKENIZERS.register

# A run of Latin letters/digits (with inner . or ' as in "15.4" or "don't") is one token.
_LATIN = r"[A-Za-z0-9\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]+(?:[.'][A-Za-z0-9]+)*"
_CHAR_RE = re.compile(_LATIN + r"|\S")
_ALNUM_END = re.compile(r"[A-Za-z0-9]$")
_ALNUM_START = re.compile(r"^[A-Za-z0-9]")
NO_POS = "x"  # the tag of tokenizers that know no parts of speech


class Tokenizer(abc.ABC):
    """Base class: `tokenize` (tokens), `tag` (tokens with POS), `detokenize` (text again).

    Subclasses implement `_tokenize` (and `_tag` if they know POS); the literal `[UNK]` that
    augmentation writes always stays one token, whatever the tokenizer.
    """

    name = "base"
    has_pos = False

    @abc.abstractmethod
    def _tokenize(self, text: str) -> list[str]:
        """Tokens of a text that holds no `[UNK]`."""

    def _tag(self, text: str) -> list[tuple[str, str]]:
        return [(t, NO_POS) for t in self._tokenize(text)]

    def tokenize(self, text: str) -> list[str]:
        if UNK not in text:
            return self._tokenize(text)
        out: list[str] = []
        for i, part in enumerate(text.split(UNK)):
            if i:
                out.append(UNK)
            out += self._tokenize(part)
        return out

    def tag(self, text: str) -> list[tuple[str, str]]:
        """(token, POS) pairs; tokenizers without POS tag every token 'x' (as is `[UNK]`)."""
        if UNK not in text:
            return self._tag(text)
        out: list[tuple[str, str]] = []
        for i, part in enumerate(text.split(UNK)):
            if i:
                out.append((UNK, NO_POS))
            out += self._tag(part)
        return out

    def detokenize(self, tokens: list[str]) -> str:
        """Join tokens without spaces, except between two Latin/digit tokens ('iPhone 4', not 'iPhone4')."""
        out: list[str] = []
        prev = ""
        for tok in tokens:
            if prev and _ALNUM_END.search(prev) and _ALNUM_START.match(tok):
                out.append(" ")
            out.append(tok)
            prev = tok
        return "".join(out)


@functools.lru_cache(maxsize=1)
def _jieba():
    """Import jieba quietly and load its dictionary once per process."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@register_tokenizer("jieba")
class JiebaTokenizer(Tokenizer):
    """Chinese words (jieba, precise mode); POS tags from `jieba.posseg`."""

    name = "jieba"
    has_pos = True

    def _tokenize(self, text: str) -> list[str]:
        return [t for t in _jieba().lcut(text) if t.strip()]

    def _tag(self, text: str) -> list[tuple[str, str]]:
        return [(p.word, p.flag) for p in _jieba().posseg.lcut(text) if p.word.strip()]


@register_tokenizer("char")
class CharTokenizer(Tokenizer):
    """Chinese characters one by one; runs of Latin letters/digits stay one token. Lower-cases Latin."""

    name = "char"

    def _tokenize(self, text: str) -> list[str]:
        return _CHAR_RE.findall(text.lower())


@register_tokenizer("whitespace")
class WhitespaceTokenizer(Tokenizer):
    """Tokens are what is between spaces (pre-segmented or English text)."""

    name = "whitespace"

    def _tokenize(self, text: str) -> list[str]:
        return text.split()

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)


@functools.lru_cache(maxsize=None)
def get_tokenizer(name: str) -> Tokenizer:
    """The tokenizer registered under `name` (one instance per process)."""
    return TOKENIZERS.get(name)()
