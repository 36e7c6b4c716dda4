from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from datadistill.cli import main
from datadistill.data import read_examples

SLOW_TEACHER = """
import sys, time
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)  # slow enough to be killed mid-file
for line in sys.stdin:
    t = line.rstrip("\\n")
    pos = any(w in t for w in ("很好", "不错", "满意", "喜欢", "干净", "舒服", "推荐", "划算", "漂亮", "热情"))
    print(("1\\t0.1 0.9" if pos else "0\\t0.9 0.1"))
"""


@pytest.fixture
def setup(tmp_path, sentiment, write_tsv):
    teacher = tmp_path / "teacher.py"
    teacher.write_text(SLOW_TEACHER)
    rows = [(t + ("[UNK]" if i % 7 == 0 else ""), " ".join(t)) for i, (_, t) in enumerate(sentiment(300))]
    data = write_tsv(tmp_path / "aug.tsv", rows, header=("text_a", "tokens_a"))
    cmd = [
        "label",
        "--teacher-cmd",
        f"{sys.executable} {teacher}",
        "--labels",
        "0,1",
        "--input",
        str(data),
        "--batch-size",
        "10",
        "--chunk-size",
        "20",
        "--quiet",
    ]
    return tmp_path, data, cmd


@pytest.mark.slow
def test_label_writes_every_row_in_order_with_scores(setup):
    tmp_path, data, cmd = setup
    out = tmp_path / "part.1"
    assert main(cmd + ["--output", str(out)]) == 0
    src = read_examples(data, require_label=False)
    got = read_examples(out)
    assert [e.text_a for e in got] == [e.text_a for e in src]
    assert [e.tokens_a for e in got] == [e.tokens_a for e in src]
    assert all(e.probs in ([0.1, 0.9], [0.9, 0.1]) and e.logits is None for e in got)
    assert {e.label for e in got} == {"0", "1"}
    assert not list(tmp_path.glob("part.1.partial*"))


@pytest.mark.slow
def test_killed_labelling_resumes_with_every_row_once_in_order(setup):
    tmp_path, data, cmd = setup
    cmd = [f"{a} 0.15" if a.startswith(sys.executable) else a for a in cmd]  # a teacher that takes its time
    clean = tmp_path / "clean.1"
    assert main(cmd + ["--output", str(clean)]) == 0
    out = tmp_path / "part.1"
    partial = tmp_path / "part.1.partial"
    argv = [sys.executable, "-m", "datadistill.cli"] + cmd + ["--output", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until a few chunks are durable, then kill hard
        if partial.exists() and partial.read_bytes().count(b"\n") > 60:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = partial.read_bytes().count(b"\n") - 1
    assert 0 < done < 300 and not out.exists()
    with open(partial, "ab") as f:  # as if killed in the middle of writing a line
        f.write("1\t半行".encode())
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"resuming {out}: {done} rows already labelled" in r.stderr
    counts = eval(r.stderr.split("labels ")[-1].split(";")[0])  # the summary counts every row, resumed ones too
    assert sum(counts.values()) == 300
    assert out.read_bytes() == clean.read_bytes()


@pytest.mark.slow
def test_changed_input_starts_over(setup, capsys):
    tmp_path, data, cmd = setup
    out = tmp_path / "part.1"
    partial = tmp_path / "part.1.partial"
    partial.write_text("label\ttext_a\tprobs\tlogits\n1\tstale\t\t\n")
    (tmp_path / "part.1.partial.json").write_text('{"input": "elsewhere"}')
    assert main(cmd + ["--output", str(out)]) == 0
    assert "starting over" in capsys.readouterr().err
    assert len(read_examples(out)) == 300


COUNTING_TEACHER = """
import sys
lines = sys.stdin.readlines()
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.writelines(lines)
for t in lines:
    print("1\\t0.2 0.8" if "好" in t else "0\\t0.7 0.3")
"""


def test_score_cache_scores_each_text_once_per_teacher(tmp_path, capsys, sentiment, write_tsv):
    teacher = tmp_path / "teacher.py"
    teacher.write_text(COUNTING_TEACHER)
    seen = tmp_path / "seen.txt"
    texts = [t for _, t in sentiment(120)]
    first = write_tsv(tmp_path / "a.tsv", [(t,) for t in texts[:80]], header=("text_a",))
    second = write_tsv(tmp_path / "b.tsv", [(t,) for t in texts[40:]], header=("text_a",))
    cache = tmp_path / "scores.tsv"

    def run(data, out, cmd_arg=f"{sys.executable} {teacher} {seen}", cached=True):
        argv = [
            "label",
            "--teacher-cmd",
            cmd_arg,
            "--labels",
            "0,1",
            "--input",
            str(data),
            "--output",
            str(out),
            "--batch-size",
            "16",
            "--chunk-size",
            "32",
            "--quiet",
        ] + (["--cache", str(cache)] if cached else [])
        assert main(argv) == 0

    run(first, tmp_path / "a.1")
    assert len(seen.read_text().splitlines()) == 80
    run(second, tmp_path / "b.1")  # rows 40..79 come from the cache
    assert len(seen.read_text().splitlines()) == 80 + 40
    err = capsys.readouterr().err
    assert "(40 scored, " in err and "; 40 from the score cache)" in err
    run(second, tmp_path / "b.nocache", cached=False)
    assert (tmp_path / "b.1").read_bytes() == (tmp_path / "b.nocache").read_bytes()
    assert len(cache.read_text().splitlines()) == 1 + 120
    # another teacher (another command) must not use these scores
    run(second, tmp_path / "b.2", cmd_arg=f"{sys.executable} {teacher} {seen} other")
    assert "holds another teacher's scores; starting a new cache" in capsys.readouterr().err
    assert len(cache.read_text().splitlines()) == 1 + 80


def test_without_a_bar_labelling_logs_rows_done_rate_and_time_left(tmp_path, caplog, sentiment, write_tsv):
    """A job writing to a log file (no tty, no bar) still shows how far it is."""
    from datadistill.label import label_file
    from datadistill.teacher.base import Teacher, TeacherScores

    class Keyword(Teacher):
        name = "keyword"

        def score(self, texts_a, texts_b=None):
            return TeacherScores(labels=["1" if "好" in t else "0" for t in texts_a])

    texts = [t for _, t in sentiment(100)]
    data = write_tsv(tmp_path / "aug.tsv", [(t,) for t in texts], header=("text_a",))
    caplog.set_level("INFO", logger="datadistill")
    stats = label_file(Keyword(), data, tmp_path / "part.1", batch_size=8, chunk_size=25, progress=False, log_every=0)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("label: ") and " of about " in r.getMessage()
    ]
    assert stats.rows == 100
    assert [ln.split(" rows")[0] for ln in lines] == [f"label: {n} of about 100" for n in (25, 50, 75, 100)]
    assert "(25 %), 0 from the score cache" in lines[0] and " left" in lines[0] and " left" not in lines[-1]
    caplog.clear()
    label_file(Keyword(), data, tmp_path / "again.1", chunk_size=25, progress=False)
    quiet = [r.getMessage() for r in caplog.records if " of about " in r.getMessage()]
    assert quiet == []  # default: at most one line a minute


def test_scores_reach_the_cache_batch_by_batch_so_a_failing_run_keeps_them(tmp_path):
    from datadistill.data.cache import ScoreCache
    from datadistill.label import score_texts
    from datadistill.teacher.base import Teacher, TeacherScores

    class BreaksAtTheThirdBatch(Teacher):
        name = "breaks"
        calls = 0

        def score(self, texts_a, texts_b=None):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("killed")
            return TeacherScores(labels=["1"] * len(texts_a), probs=[[0.25, 0.75]] * len(texts_a))

    texts = [f"评论{i}" for i in range(40)]
    cache = ScoreCache(tmp_path / "scores.tsv", "breaks")
    with pytest.raises(RuntimeError, match="killed"):
        score_texts(BreaksAtTheThirdBatch(), texts, None, batch_size=8, scores=cache)
    assert sum(cache.get(t, None) is not None for t in texts) == 16  # the two batches scored before
    labels, probs, _, cached = score_texts(BreaksAtTheThirdBatch(), texts[:16], None, batch_size=8, scores=cache)
    assert cached == 16 and labels == ["1"] * 16 and probs == ["0.25 0.75"] * 16
    cache.close()
