from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from datadistill import augment
from datadistill.augment import AugmentConfig, TokenTable, generate
from datadistill.cli import main
from datadistill.config import ConfigError, from_dict
from datadistill.data import read_examples
from datadistill.text import get_tokenizer


@pytest.fixture
def table_and_sources(sentiment):
    tok = get_tokenizer("jieba")
    table = TokenTable()
    texts = [t for _, t in sentiment(200)]
    encoded = [table.add(tok.tag(t)) for t in texts]
    table.freeze()
    return table, encoded


def test_unk_share_is_close_to_p_unk(table_and_sources):
    table, encoded = table_and_sources
    cfg = AugmentConfig(n_iter=10, p_unk=0.1, p_pos=0.0, p_ng=0.0)
    unk = total = 0
    for i, (ids, pos) in enumerate(encoded):
        for row, _used in generate(ids, pos, table, cfg, np.random.default_rng([1, i])):
            unk += int((row == 0).sum())
            total += len(row)
    assert total > 10_000
    assert abs(unk / total - 0.1) < 0.01


def test_pos_replacement_keeps_the_pos(table_and_sources):
    table, encoded = table_and_sources
    cfg = AugmentConfig(n_iter=5, p_unk=0.0, p_pos=0.5, p_ng=0.0)
    seen_pairs = set(table.pair_counts)
    changed = 0
    for i, (ids, pos) in enumerate(encoded):
        for row, _used in generate(ids, pos, table, cfg, np.random.default_rng([2, i])):
            assert len(row) == len(ids)
            for old, new, p in zip(ids, row, pos):
                assert (p, new) in seen_pairs  # the new token was seen with this POS
                changed += old != new
    assert changed > 500


def test_ngram_outputs_are_contiguous_spans(table_and_sources):
    table, encoded = table_and_sources
    cfg = AugmentConfig(n_iter=5, p_unk=0.0, p_pos=0.0, p_ng=1.0, ngram_max=4)
    lengths = Counter()
    for i, (ids, pos) in enumerate(encoded):
        src = ids.tolist()
        for row, _used in generate(ids, pos, table, cfg, np.random.default_rng([3, i])):
            r = row.tolist()
            assert 1 <= len(r) <= 4
            assert any(src[s : s + len(r)] == r for s in range(len(src) - len(r) + 1))
            lengths[len(r)] += 1
    assert set(lengths) == {1, 2, 3, 4}


def test_file_output_is_deterministic_deduplicated_and_segmented(tmp_path, sentiment, write_tsv):
    src = write_tsv(tmp_path / "train.tsv", sentiment(60))
    s1 = augment(src, tmp_path / "a.tsv", n_iter=10, seed=7)
    s2 = augment(src, tmp_path / "b.tsv", n_iter=10, seed=7)
    augment(src, tmp_path / "c.tsv", n_iter=10, seed=8)
    a = (tmp_path / "a.tsv").read_bytes()
    assert a == (tmp_path / "b.tsv").read_bytes() and a != (tmp_path / "c.tsv").read_bytes()
    assert s1.written == s2.written and s1.written + s1.dup_source + s1.dup_output == 600
    rows = read_examples(tmp_path / "a.tsv", require_label=False)
    keys = [" ".join(r.tokens_a) for r in rows]
    assert len(keys) == len(set(keys)) == s1.written
    sources = {" ".join(get_tokenizer("jieba").tokenize(t)) for _, t in sentiment(60)}
    assert not sources & set(keys)
    tok = get_tokenizer("jieba")
    for r in rows:
        assert r.text_a == tok.detokenize(r.tokens_a)
    assert set(s1.strategies) == {"unk", "pos", "ngram"}


def test_strategies_can_be_switched_off(tmp_path, sentiment, write_tsv):
    src = write_tsv(tmp_path / "train.tsv", sentiment(30))
    stats = augment(src, tmp_path / "a.tsv", n_iter=5, p_pos=0.0)
    assert stats.strategies["pos"] == 0 and stats.strategies["unk"] > 0 and stats.strategies["ngram"] > 0


def test_pairs_augment_both_sides(tmp_path, write_tsv):
    rows = [
        ("怎么开初婚未育证明", "初婚未育情况证明怎么开", "1"),
        ("谁知道她是网络美女吗", "爱情这杯酒谁喝都会醉是什么歌", "0"),
    ] * 3
    src = write_tsv(tmp_path / "pairs.tsv", rows, header=("text_a", "text_b", "label"))
    augment(src, tmp_path / "a.tsv", n_iter=20, p_unk=0.3, p_ng=0.0)
    out = read_examples(tmp_path / "a.tsv", require_label=False)
    assert all(r.text_b and r.tokens_b for r in out)
    assert any("[UNK]" in r.text_b for r in out) and any("[UNK]" in r.text_a for r in out)


def test_config_validation_messages():
    with pytest.raises(ConfigError) as e:
        from_dict(AugmentConfig, {"p_unk": 0.7, "p_pos": 0.5})
    assert str(e.value) == "config: p_unk + p_pos must be at most 1 (one draw per token), got 1.2"
    with pytest.raises(ConfigError) as e:
        from_dict(AugmentConfig, {"n_itr": 3}, "augment")
    assert (
        str(e.value) == "augment: unknown key 'n_itr'; did you mean 'n_iter'? "
        "(known: n_iter, ngram_max, p_ng, p_pos, p_unk, seed, tokenizer, workers)"
    )
    with pytest.raises(ConfigError, match="did you mean 'jieba'"):
        from_dict(AugmentConfig, {"tokenizer": "jeiba"})


def test_cli_end_to_end(tmp_path, capsys, sentiment, write_tsv):
    src = write_tsv(tmp_path / "train.tsv", sentiment(40))
    out = tmp_path / "aug.tsv"
    rc = main(
        [
            "augment",
            "--input",
            str(src),
            "--output",
            str(out),
            "--n-iter",
            "4",
            "--seed",
            "1",
            "--workers",
            "2",
            "--quiet",
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "sources read 40, examples written" in err and "unk" in err and "ngram" in err
    assert out.read_text(encoding="utf-8").split("\n")[0] == "text_a\ttokens_a\tstrategy\tsource"
    rc = main(["augment", "--input", str(tmp_path / "missing.tsv"), "--output", str(out)])
    assert rc == 2
    assert f"datadistill augment: error: {tmp_path / 'missing.tsv'}: file does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared("chnsenticorp")
def test_chnsenticorp_gives_nine_unique_examples_a_review_byte_identical(tmp_path, shared_data):
    # 1,500 reviews: the whole train set (80k unique of 96k) would take a minute of the suite's ten
    part = tmp_path / "part.tsv"
    lines = open(shared_data / "chnsenticorp" / "train.tsv", encoding="utf-8").readlines()[:1501]
    part.write_text("".join(lines), encoding="utf-8")
    s = augment(part, tmp_path / "b2.tsv", n_iter=10, seed=1, workers=2)
    assert s.written >= 13_500 and all(s.strategies[k] > 1000 for k in ("unk", "pos", "ngram"))
    # the same input and seed give the same bytes, however many processes tag
    augment(part, tmp_path / "b1.tsv", n_iter=10, seed=1, workers=1)
    assert (tmp_path / "b1.tsv").read_bytes() == (tmp_path / "b2.tsv").read_bytes()
    assert len((tmp_path / "b1.tsv").read_text(encoding="utf-8").splitlines()) == s.written + 1


def test_a_token_both_sides_hold_gets_the_same_edit_and_ngrams_cut_one_side(table_and_sources):
    from datadistill.augment import generate_pair

    table, encoded = table_and_sources
    a, b = encoded[0], encoded[1]
    # side b: side a's first three tokens, then its own: those three are shared
    eb = (np.concatenate([a[0][:3], b[0]]), np.concatenate([a[1][:3], b[1]]))
    cfg = AugmentConfig(n_iter=200, p_unk=0.3, p_pos=0.3, p_ng=0.5)
    va, vb = generate_pair(a, eb, table, cfg, np.random.default_rng(0))
    uncut = [(ra, rb) for (ra, ua), (rb, ub) in zip(va, vb) if "ngram" not in ua + ub]
    assert len(uncut) > 50 and all(np.array_equal(ra[:3], rb[:3]) for ra, rb in uncut)
    assert any(not np.array_equal(ra[:3], a[0][:3]) for ra, _ in uncut)  # and they do get edited
    both_cut = [1 for (_, ua), (_, ub) in zip(va, vb) if "ngram" in ua and "ngram" in ub]
    assert not both_cut and sum("ngram" in u for _, u in va + vb) > 40
