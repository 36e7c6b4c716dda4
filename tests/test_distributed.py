"""Labelling under torchrun: 2 CPU ranks (gloo) on one node and on two, byte-identical to one process,
and a rank killed mid-labelling resumes to the complete, ordered output."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

TEACHER = """
import sys, time
delay = float(sys.argv[1])
for line in sys.stdin:
    time.sleep(delay)
    p = 0.9 if "好" in line or "满意" in line else 0.2
    print(f"{int(p > 0.5)}\\t{1 - p:.3f} {p:.3f}")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def texts(tmp_path, sentiment):
    path = tmp_path / "texts.txt"
    path.write_text("".join(t + "\n" for _, t in sentiment(230, seed=5)), encoding="utf-8")
    return path


def _label_args(tmp_path, texts, out, delay=0.0, cache=True) -> list[str]:
    script = tmp_path / "teacher.py"
    script.write_text(TEACHER)
    args = ["label", "--teacher-cmd", f"{sys.executable} {script} {delay}", "--labels", "0,1"]
    args += ["--input", str(texts), "--output", str(out), "--chunk-size", "16", "--batch-size", "8", "-q"]
    return args + (["--cache", str(out.parent / "scores.tsv")] if cache else [])


def _torchrun(args: list[str], nproc: int = 2, extra: list[str] | None = None, **kw) -> subprocess.Popen:
    port = _free_port()
    launch = extra or ["--standalone", f"--master-port={port}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", *launch]
    return subprocess.Popen(
        cmd + ["-m", "datadistill", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def _one_process(args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "datadistill", *args], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_two_ranks_label_byte_identically_to_one_process(tmp_path, texts):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _one_process(_label_args(tmp_path, texts, tmp_path / "one" / "part.1"))
    p = _torchrun(_label_args(tmp_path, texts, tmp_path / "two" / "part.1"))
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    assert (tmp_path / "two" / "part.1").read_bytes() == (tmp_path / "one" / "part.1").read_bytes()
    files = sorted(f.name for f in (tmp_path / "two").iterdir() if not f.name.startswith("."))  # locks are hidden
    assert files == ["part.1", "scores.tsv"]  # shards merged, rank caches folded in
    cache = lambda d: sorted((tmp_path / d / "scores.tsv").read_text("utf-8").splitlines())  # noqa: E731
    assert cache("two") == cache("one")  # every rank's new scores reached the one cache


def test_two_nodes_on_one_machine_give_the_same_bytes(tmp_path, texts):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _one_process(_label_args(tmp_path, texts, tmp_path / "one" / "part.1", cache=False))
    port = _free_port()
    nodes = [
        _torchrun(
            _label_args(tmp_path, texts, tmp_path / "two" / "part.1", cache=False),
            nproc=1,
            extra=[
                "--nnodes=2",
                f"--node-rank={i}",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}",
                "--rdzv-id=dd-test",
            ],  # fmt: skip
        )
        for i in range(2)
    ]
    for p in nodes:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    assert (tmp_path / "two" / "part.1").read_bytes() == (tmp_path / "one" / "part.1").read_bytes()


def test_a_rank_killed_mid_labelling_fails_the_job_by_rank_and_the_same_command_completes_it(tmp_path, texts):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _one_process(_label_args(tmp_path, texts, tmp_path / "one" / "part.1", cache=False))
    args = _label_args(tmp_path, texts, tmp_path / "two" / "part.1", delay=0.01, cache=False)
    p = _torchrun(args, start_new_session=True)
    shard = tmp_path / "two" / "part.1.rank1-of-2.partial"
    lock = tmp_path / "two" / ".part.1.rank1-of-2.lock"
    deadline = time.time() + 120
    while time.time() < deadline and not (shard.exists() and shard.read_text("utf-8").count("\n") > 17):
        time.sleep(0.05)  # rank 1 has written its header and a first chunk
    assert shard.exists(), p.communicate()[0]
    os.kill(int(lock.read_text().split()[0]), signal.SIGKILL)
    out, _ = p.communicate(timeout=120)
    assert p.returncode != 0 and "rank" in out and "part.1" not in {f.name for f in (tmp_path / "two").iterdir()}
    done_before = shard.read_text("utf-8").count("\n") - 1
    assert 0 < done_before < 115  # killed in the middle of its share
    p = _torchrun(args[:-1] + ["-v"])  # the same command again (verbose, to see the resume)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    assert "rows already labelled" in out
    assert (tmp_path / "two" / "part.1").read_bytes() == (tmp_path / "one" / "part.1").read_bytes()
    assert not list((tmp_path / "two").glob("part.1.rank*"))
    shutil.rmtree(tmp_path / "two")


def test_ddp_student_training_on_two_ranks_matches_one_process_and_rank_0_saves(tmp_path, senti_files, student_config):
    import json

    results = {}
    for n in (1, 2):
        cfg = student_config(senti_files, tmp_path, "bow", epochs=3, batch_size=32)
        cfg["output"] = str(tmp_path / f"bow{n}")
        path = tmp_path / f"bow{n}.json"
        path.write_text(json.dumps(cfg))
        args = ["student", "train", "--config", str(path), "-q"]
        if n == 1:
            _one_process(args)
        else:
            p = _torchrun(args)
            out, _ = p.communicate(timeout=300)
            assert p.returncode == 0, out
        results[n] = json.loads((tmp_path / f"bow{n}" / "metrics.json").read_text())
    # the same global batch of 32: two ranks of 16 rows take the same steps as one process
    assert results[2]["steps"] == results[1]["steps"]
    assert abs(results[2]["dev"]["accuracy"] - results[1]["dev"]["accuracy"]) <= 0.03
    r = subprocess.run(
        [sys.executable, "-m", "datadistill", "predict", "--model", str(tmp_path / "bow2")],
        input="房间很干净，服务很好，我很满意\n",
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and r.stdout.split("\t")[0] == "1", r.stderr


@pytest.mark.parametrize("keep", ["best", "average"])
def test_two_ranks_evaluate_the_last_step_when_a_batch_smaller_than_the_world_is_dropped(
    tmp_path, senti_files, student_config, keep
):
    """401 rows in batches of 16 leave a batch of one row, which two ranks drop: the schedule counts
    25 steps an epoch, not 26, so the last step is the counted one and is evaluated, and a run evaluated
    once per epoch neither returns its starting weights (keep "average", nothing averaged) nor skips the end."""
    import json

    train = senti_files["train"]
    train.write_text(train.read_text(encoding="utf-8") + "1\t房间很干净，服务很好\n", encoding="utf-8")
    cfg = student_config(senti_files, tmp_path, "bow", epochs=2, batch_size=16, eval_every=0, keep=keep)
    path = tmp_path / "bow.json"
    path.write_text(json.dumps(cfg))
    p = _torchrun(["student", "train", "--config", str(path), "-q"])
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    m = json.loads((tmp_path / "bow" / "metrics.json").read_text())
    assert m["steps"] == 50 and [h["step"] for h in m["history"]] == [25, 50]  # 25 steps an epoch, not 26
    dev = [h["dev_accuracy"] for h in m["history"]]
    # "average": only step 50 lies past half of the 50 steps, so the mean is its weights
    assert m["dev"]["accuracy"] == pytest.approx(dev[-1] if keep == "average" else max(dev))
    assert m.get("averaged", 0) == (1 if keep == "average" else 0) and m["dev"]["accuracy"] >= 0.65  # untrained: ~0.5


def test_a_tiny_teacher_fine_tunes_on_two_ranks_and_rank_0_saves_it(tmp_path, senti_files, tiny_checkpoint):
    base = tiny_checkpoint(tmp_path / "base", "bert")
    args = ["teacher", "finetune", "--model", str(base), "--train", str(senti_files["train"])]
    args += ["--dev", str(senti_files["dev"]), "--out", str(tmp_path / "teacher"), "-q"]
    args += ["--set", "epochs=1", "--set", "batch_size=16", "--set", "max_len=32", "--set", "lr=2e-3"]
    p = _torchrun(args)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    r = subprocess.run(
        [sys.executable, "-m", "datadistill", "teacher", "predict", "--model", str(tmp_path / "teacher")],
        input="房间很干净\n",
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and len(r.stdout.strip().split("\t")) == 3, r.stderr


def test_the_whole_pipeline_runs_on_two_ranks_and_one_process_then_finds_it_up_to_date(
    tmp_path, senti_files, tiny_checkpoint
):
    import json

    cfg = {
        "work": str(tmp_path / "work"),
        "data": {k: str(v) for k, v in senti_files.items()},
        "teacher": {
            "model": str(tiny_checkpoint(tmp_path / "base", "bert")),
            "epochs": 1,
            "lr": 2e-3,
            "batch_size": 16,
            "max_len": 32,
        },  # fmt: skip
        "augment": {"n_iter": 1, "seed": 1},
        "label": {"batch_size": 32, "chunk_size": 64},
        "students": {"bow": {"arch": "bow", "features": {"ngram_buckets": 5000}, "model": {"emb_dim": 16}}},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(cfg))
    p = _torchrun(["run", str(path), "-q"])
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    report = json.loads((tmp_path / "work" / "report" / "report.json").read_text())
    # a 1-epoch teacher is below the classical model: the default ("auto") ensemble labels, over two ranks
    assert [r["model"] for r in report["rows"]] == ["teacher", "ensemble", "classical", "bow_base", "bow"]
    r = subprocess.run(
        [sys.executable, "-m", "datadistill", "run", str(path), "-q"], env=_env(), capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stderr.count("up to date, skipped") == 5, r.stderr


def test_a_cache_another_job_holds_stops_every_rank_before_any_work(tmp_path, texts):
    from datadistill.lock import exclusive

    (tmp_path / "two").mkdir()
    args = _label_args(tmp_path, texts, tmp_path / "two" / "part.1")
    with exclusive(tmp_path / "two" / "scores.tsv", "a test"):
        p = _torchrun(args)
        out, _ = p.communicate(timeout=300)
    assert p.returncode != 0
    assert out.count("another datadistill process (PID") == 2  # the one line, from each rank
    assert "[rank1]" not in out and not list((tmp_path / "two").glob("part.1*"))
