from __future__ import annotations


def test_the_report_sends_the_teacher_the_texts_labelling_sends_it():
    """A literal `[UNK]` is the teacher's unknown token for the dev check and labelling (score_texts),
    so the report's test measurement must send it the same way, or the two disagree on one text."""
    from datadistill.label import score_texts
    from datadistill.report import _teacher_probs
    from datadistill.teacher.base import Teacher, TeacherScores

    class Recorder(Teacher):
        name = "recorder"
        unk_token = "<unk>"

        def __init__(self) -> None:
            self.seen: list[tuple[list[str], list[str] | None]] = []

        def score(self, texts_a, texts_b=None):
            self.seen.append((list(texts_a), None if texts_b is None else list(texts_b)))
            return TeacherScores(labels=["1"] * len(texts_a), probs=[[0.25, 0.75]] * len(texts_a))

    a, b = ["房间[UNK]干净", "很好"], ["[UNK]", None]
    labelled, reported = Recorder(), Recorder()
    score_texts(labelled, a, b, batch_size=8)
    probs = _teacher_probs(reported, ["0", "1"])(a, b)
    assert reported.seen == [(["房间<unk>干净", "很好"], ["<unk>", ""])]
    assert sorted(labelled.seen[0][0]) == sorted(reported.seen[0][0])  # labelling batches by length
    assert probs.tolist() == [[0.25, 0.75], [0.25, 0.75]]
    _teacher_probs(reported, ["0", "1"])(a)
    assert reported.seen[-1] == (["房间<unk>干净", "很好"], None)
