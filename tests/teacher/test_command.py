from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from datadistill.teacher import TeacherError
from datadistill.teacher.command import CommandTeacher


def program(tmp_path, body: str) -> str:
    p = tmp_path / "teacher.py"
    p.write_text("import sys, time\n" + textwrap.dedent(body))
    return f"{sys.executable} {p}"


GOOD = """
for line in sys.stdin:
    text = line.rstrip("\\n")
    pos = "好" in text
    print(("1" if pos else "0") + "\\t" + ("0.1 0.9" if pos else "0.8 0.2"))
"""


def test_labels_and_probabilities(tmp_path):
    t = CommandTeacher(program(tmp_path, GOOD), labels=["0", "1"])
    s = t.score(["很好", "差", "好的"])
    assert s.labels == ["1", "0", "1"]
    assert np.allclose(s.probs, [[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]])


def test_pairs_are_sent_tab_separated(tmp_path):
    t = CommandTeacher(
        program(
            tmp_path,
            """
for line in sys.stdin:
    a, b = line.rstrip("\\n").split("\\t")
    print("1" if a == b else "0")
""",
        )
    )
    assert t.score(["x", "y"], ["x", "z"]).labels == ["1", "0"]


@pytest.mark.parametrize(
    "body,message",
    [
        ("sys.exit(3)", "exited with status 3"),
        ("print('boom', file=sys.stderr); sys.exit(1)", "exited with status 1: boom"),
        ("time.sleep(30)", "gave no complete answer for a batch of 2 texts within 1s"),
        ("print('1')", "answered 1 lines for 2 texts"),
        (
            "print('1\\tx y'); print('0\\t0.5 0.5')",
            "answer 1 of the batch ('1\\tx y') for text 'a' has probabilities that are not numbers",
        ),
        ("print('2'); print('0')", "answer 1 of the batch ('2') for text 'a' has label '2', not one of 0, 1"),
        ("print('1\\t0.2 0.3 0.5'); print('0\\t0.5 0.5')", "has 3 probabilities for 2 labels"),
        ("print('1\\t70 30'); print('0\\t0.5 0.5')", "has scores that are not probabilities (numbers in [0, 1]"),
        ("print('1\\tinf 0'); print('0\\t0.5 0.5')", "has scores that are not probabilities"),
        ("print('1\\tnan 1'); print('0\\t0.5 0.5')", "has scores that are not probabilities"),
    ],
)
def test_stuck_crashing_or_malformed_programs_are_reported(tmp_path, body, message):
    # a 1 s time-out only where the program is meant to hang: a loaded machine starts Python slower than that
    timeout = 1 if "sleep" in body else 60
    t = CommandTeacher(program(tmp_path, "sys.stdin.read()\n" + body), labels=["0", "1"], timeout=timeout)
    with pytest.raises(TeacherError) as e:
        t.score(["a", "b"])
    assert message in str(e.value)
    assert "teacher command '" in str(e.value)


def test_missing_program(tmp_path):
    with pytest.raises(TeacherError, match="program 'no-such-teacher-xyz' not found"):
        CommandTeacher("no-such-teacher-xyz --flag").score(["a"])


def test_a_teacher_kind_without_a_config_section_is_refused_by_name():
    from datadistill.config import ConfigError
    from datadistill.run_config import teacher_config
    from datadistill.teacher import Teacher, TeacherScores, register_teacher

    @register_teacher("python_only")
    class PythonOnly(Teacher):
        name = "python_only"

        def score(self, texts_a, texts_b=None):
            return TeacherScores(labels=["1"] * len(texts_a))

    with pytest.raises(ConfigError, match="teacher.kind: the teacher kind 'python_only' has no config section"):
        teacher_config({"kind": "python_only"})
    with pytest.raises(TeacherError, match="teacher kind 'python_only' cannot be built from a pipeline config"):
        PythonOnly.load(None, None, 1, "auto")


def test_probabilities_printed_rounded_are_accepted_and_a_sum_far_from_one_is_not(tmp_path):
    body = "sys.stdin.read()\nprint('a\\t0.33 0.33 0.33'); print('b\\t0.5 0.6 0.0')\n"
    t = CommandTeacher(program(tmp_path, body), labels=["a", "b", "c"], timeout=5)
    with pytest.raises(TeacherError, match=r"answer 2 of the batch .* has scores that are not probabilities"):
        t.score(["x", "y"])  # 0.99 passes (two decimals), 1.1 does not
    ok = CommandTeacher(program(tmp_path, "sys.stdin.read()\nprint('a\\t0.33 0.33 0.33')\n"), labels=["a", "b", "c"])
    np.testing.assert_allclose(ok.score(["x"]).probs, [[0.33, 0.33, 0.33]])
