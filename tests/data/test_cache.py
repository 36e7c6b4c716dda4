"""The teacher's score cache: damaged lines are misses (scored again), never crashes or wrong scores."""

from datadistill.data.cache import ScoreCache


def _cache_with(tmp_path, lines: list[bytes]) -> ScoreCache:
    path = tmp_path / "scores.tsv"
    head = ScoreCache(path, "t").close() or path.read_bytes()  # a fresh cache writes its header line
    path.write_bytes(head + b"".join(lines))
    return ScoreCache(path, "t")


def test_damaged_rows_are_misses_and_good_rows_hits(tmp_path):
    cache = _cache_with(
        tmp_path,
        [
            "好\t\t1\t0.2 0.8\t-1 1\n".encode(),
            "坏\t\t0\tabc\t\n".encode(),  # probabilities that are no numbers
            "差\t\t0\t0.7 0.7\t\n".encode(),  # not adding up to one
            "乱\t\t0\t0.9 0.1 0.0\t1 2\n".encode(),  # three probabilities, two logits
            "空\t\t\t0.5 0.5\t\n".encode(),  # no label
            b"\xff\xfe\t\t0\t0.5 0.5\t\n",  # not UTF-8
            "只\t\t1\t\t\n".encode(),  # a teacher that answers labels only
        ],
    )
    assert cache.get("好", None) == ("1", "0.2 0.8", "-1 1")
    assert cache.get("只", None) == ("1", "", "")
    assert [cache.get(t, None) for t in ("坏", "差", "乱", "空")] == [None] * 4
    cache.add([("差", None, "0", "0.6 0.4", "")])  # scored again: the new line answers
    assert cache.get("差", None) == ("0", "0.6 0.4", "")
    cache.close()


def test_a_torn_last_line_does_not_swallow_the_next_row(tmp_path):
    cache = _cache_with(tmp_path, ["好\t\t1\t0.2 0.8\t\n".encode(), "坏\t\t0\t0.7".encode()])  # killed mid-line
    assert cache.get("坏", None) is None
    cache.add([("坏", None, "0", "0.7 0.3", ""), ("差", None, "0", "0.9 0.1", "")])
    cache.close()
    again = ScoreCache(tmp_path / "scores.tsv", "t")
    assert [again.get(t, None) for t in ("好", "坏", "差")] == [
        ("1", "0.2 0.8", ""),
        ("0", "0.7 0.3", ""),
        ("0", "0.9 0.1", ""),
    ]
    again.close()


def test_a_header_that_is_not_utf8_is_another_file(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_bytes(b"\xff# not ours\n")
    cache = ScoreCache(path, "t")  # replaced by a new cache, not a decoding error
    assert cache.get("好", None) is None
    cache.close()
    assert path.read_text(encoding="utf-8").startswith('# {"teacher": "t"}')
