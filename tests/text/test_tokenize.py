from __future__ import annotations

import pytest

from datadistill.text import TOKENIZERS, Vocab, get_tokenizer


def test_char_keeps_latin_runs_and_lowercases():
    tok = get_tokenizer("char")
    assert tok.tokenize("15.4寸笔记本 ThinkPad很好!") == ["15.4", "寸", "笔", "记", "本", "thinkpad", "很", "好", "!"]


def test_jieba_words_and_pos_tags():
    tok = get_tokenizer("jieba")
    assert tok.tokenize("我喜欢这家酒店") == ["我", "喜欢", "这家", "酒店"]
    tagged = dict(tok.tag("我喜欢这家酒店"))
    assert tagged["酒店"] == "n" and tagged["喜欢"] == "v"
    assert get_tokenizer("jieba") is tok  # one instance (and one dictionary load) per process


def test_whitespace_and_detokenize():
    assert get_tokenizer("whitespace").tokenize(" a  b\tc ") == ["a", "b", "c"]
    assert get_tokenizer("jieba").detokenize(["买", "iPhone", "4", "很", "好"]) == "买iPhone 4很好"


def test_unknown_tokenizer_suggests_name():
    with pytest.raises(KeyError) as e:
        TOKENIZERS.get("jeiba")
    assert "unknown tokenizer 'jeiba'; did you mean 'jieba'? (known: char, jieba, whitespace)" in str(e.value)


def test_vocab_build_save_load(tmp_path):
    v = Vocab.build([["a", "b", "a"], ["c", "a", "b"], ["d"]], min_freq=2)
    assert v.itos == ["[PAD]", "[UNK]", "a", "b"]
    assert v.encode(["a", "zz", "b"]) == [2, 1, 3]
    v.save(tmp_path / "vocab.txt")
    assert Vocab.load(tmp_path / "vocab.txt").itos == v.itos
    assert len(Vocab.build([["a", "b", "c"]], max_size=3)) == 3
