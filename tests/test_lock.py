"""One writer per output: a second process is refused at once, naming the holder; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from datadistill.cli import main
from datadistill.lock import LockedError, exclusive

HOLD = "import sys, time\nfrom datadistill.lock import exclusive\nwith exclusive(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"


@pytest.fixture
def holder():
    """holder(path): a live process that holds the lock on `path` until the test ends."""
    procs = []

    def start(path):
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "held"
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_file(tmp_path, holder):
    out = tmp_path / "part.1"
    p = holder(out)
    with pytest.raises(LockedError) as e, exclusive(out):
        pass
    assert f"another datadistill process (PID {p.pid}) is writing it" in str(e.value)
    assert str(tmp_path / ".part.1.lock") in str(e.value)
    with pytest.raises(LockedError, match=f"PID {p.pid}"), exclusive(out):  # a refused try leaves the PID there
        pass
    p.kill()
    p.wait()
    with exclusive(out):  # the kernel dropped the dead holder's lock
        pass


def test_a_lock_file_left_by_a_dead_process_is_taken_over_with_a_log_line(tmp_path, caplog):
    out = tmp_path / "part.1"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".part.1.lock").write_text(dead.stdout.strip())
    caplog.set_level("INFO", logger="datadistill")
    with exclusive(out):
        pass
    assert f"taking over {tmp_path / '.part.1.lock'}: its process {dead.stdout.strip()} is gone" in caplog.text


def test_two_label_runs_and_two_pipeline_runs_on_one_output_cannot_interleave(
    tmp_path, holder, capsys, write_tsv, sentiment
):
    data = write_tsv(tmp_path / "aug.tsv", [(t,) for _, t in sentiment(20)], header=("text_a",))
    teacher = tmp_path / "t.py"
    teacher.write_text("import sys\nfor line in sys.stdin:\n    print('1')\n")
    out = tmp_path / "part.1"
    p = holder(out)
    argv = ["label", "--teacher-cmd", f"{sys.executable} {teacher}", "--input", str(data), "--output", str(out)]
    assert main(argv) == 2
    assert f"(PID {p.pid})" in capsys.readouterr().err and not out.exists()
    assert not (tmp_path / "part.1.partial").exists()
    work = tmp_path / "work"
    cfg = tmp_path / "pipe.json"
    cfg.write_text(
        json.dumps(
            {
                "work": str(work),
                "data": {"train": str(data), "dev": str(data), "test": str(data)},
                "students": {"bow": {}},
            }
        )
    )
    q = holder(work)
    t0 = time.perf_counter()
    assert main(["run", str(cfg)]) == 2
    assert f"another datadistill process (PID {q.pid})" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5  # at once, not after waiting
