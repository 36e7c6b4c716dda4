from __future__ import annotations

import numpy as np

from datadistill.text.charids import CharIds
from datadistill.text.features import FeatureConfig, Featurizer
from datadistill.text.tokenize import get_tokenizer
from datadistill.text.vocab import Vocab

AWKWARD = [
    "这家酒店很好，服务也不错！",
    "iPhone 4S 的屏幕 15.4 寸, don't buy",
    "ＡＢＣ全角１２３ and　ideographic space",
    "",
    "   \t ",
    "[UNK] 开头和结尾 [UNK]",
    "中[UNK]间",
    "emoji 😀 and é accents ÉCOLE",
    "x'  a.b. c.d 3.14.15",
    "a.bＣd x'yＺ 1.5ｋｇ ＡＢ.cd ab..cd 'q .5 z'",  # ASCII continuations then fullwidth letters
    "abc",
    "3.5",
    "tab\tinside\u2028line sep\u00a0nbsp",
    "很" * 300,
    "İstanbul ΣΑΣ",
    "surrogate \ud800 alone",
]


def slow_ids(vocab, texts, max_len):
    tok = get_tokenizer("char")
    return [np.asarray(vocab.encode(tok.tokenize(t)[:max_len]) or [vocab.unk_id]) for t in texts]


def test_batch_ids_equal_tokenize_then_encode_on_awkward_text():
    tok = get_tokenizer("char")
    # vocabulary from half the texts, so some characters and Latin runs are unknown
    vocab = Vocab.build([tok.tokenize(t) for t in AWKWARD[::2]])
    for max_len in (1, 7, 256):
        fast = CharIds(vocab)(AWKWARD, max_len)
        for text, a, b in zip(AWKWARD, fast, slow_ids(vocab, AWKWARD, max_len)):
            assert a.dtype == np.int64 and a.tolist() == b.tolist(), (text, max_len)


def test_featurizer_uses_the_batch_path_with_the_same_result():
    tok = get_tokenizer("char")
    vocab = Vocab.build([tok.tokenize(t) for t in AWKWARD])
    f = Featurizer(FeatureConfig(tokenizer="char", max_len=64, ngrams=[2, 3], ngram_buckets=1000), vocab)
    many = f.encode_many(AWKWARD)
    assert [m.tolist() for m in many] == [f.encode(t).tolist() for t in AWKWARD]
    assert all(m.tolist() == [vocab.unk_id] for m, t in zip(many, AWKWARD) if not t.strip())
