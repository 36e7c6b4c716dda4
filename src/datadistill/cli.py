"""`datadistill` command line: one sub-command per pipeline step."""
from __future__ import annotations

import argparse
import sys

from .config import ConfigError
from .data.io import DataError
from .modelio import ModelFolderError
from .teacher.base import TeacherError
from .teacher.hf import PRECISIONS


def _bars(args) -> bool:
    """Progress bars on a terminal only (not in logs or pipes), and never with --quiet."""
    return not args.quiet and sys.stderr.isatty()


def _add_augment(sub) -> None:
    p = sub.add_parser("augment", help="step 1: make new unlabelled texts from labelled ones",
                       description="Make new unlabelled texts: [UNK] noise, same-POS replacement, n-gram sampling.")
    p.add_argument("--input", required=True, help="labelled TSV/JSONL (or plain text) to augment")
    p.add_argument("--output", required=True, help="augmented TSV to write")
    p.add_argument("--n-iter", type=int, default=10, help="variants per source (default 10)")
    p.add_argument("--p-unk", type=float, default=0.1, help="probability a token becomes [UNK] (default 0.1)")
    p.add_argument("--p-pos", type=float, default=0.1, help="probability a token gets a same-POS replacement (default 0.1)")
    p.add_argument("--p-ng", type=float, default=0.25, help="probability an example becomes one random span (default 0.25)")
    p.add_argument("--ngram-max", type=int, default=None, help="longest span n-gram sampling keeps (default: no limit)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tokenizer", default="jieba", help="jieba (default), char or whitespace")
    p.add_argument("--workers", type=int, default=1, help="processes for POS tagging (default 1)")
    p.add_argument("--label-column", default="label")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count bad input lines instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_augment)


def _run_augment(args) -> None:
    from .augment import AugmentConfig, augment_file
    from .config import from_dict

    cfg = from_dict(AugmentConfig, dict(n_iter=args.n_iter, p_unk=args.p_unk, p_pos=args.p_pos, p_ng=args.p_ng,
                                        ngram_max=args.ngram_max, seed=args.seed, tokenizer=args.tokenizer,
                                        workers=args.workers), "augment")
    stats = augment_file(args.input, args.output, cfg, label_column=args.label_column,
                         skip_bad_lines=args.skip_bad_lines, progress=_bars(args))
    print(f"augment: {stats.summary()}; wrote {args.output}", file=sys.stderr)


def _add_student(sub) -> None:
    p = sub.add_parser("student", help="step 3: train a student (BOW, CNN, LSTM)")
    ssub = p.add_subparsers(dest="student_command", metavar="ACTION", required=True)
    t = ssub.add_parser("train", help="train a student from a JSON config",
                        description="Train on data.train (part.0) + data.teacher_labelled (part.1), select on dev, "
                                    "report test, save a self-contained model folder. The training state is saved at each "
                                    "dev evaluation to OUTPUT/.train_checkpoint.pt and the same command after a "
                                    "kill continues from there (--set train.checkpoint=false turns this off).")
    t.add_argument("--config", help="JSON run config (see examples/)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.lr=1e-3 (repeatable)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_run_student_train)


def _run_student_train(args) -> None:
    import shlex

    from .student import load_run_config, train_student

    cfg = load_run_config(args.config, args.set)
    train_student(cfg, progress=_bars(args),
                  command="datadistill " + " ".join(shlex.quote(a) for a in args.argv))


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="accuracy, macro-F1, per-class scores and confusion of a model on a labelled file")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="labelled TSV/JSONL")
    p.add_argument("--label-column", default="label")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> None:
    from .evaluate import format_metrics
    from .student import dump_json, evaluate_folder

    m = evaluate_folder(args.model, args.data, args.label_column)
    print(format_metrics(m))
    if args.json:
        dump_json(m, args.json)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict with a model folder: text lines in, label<TAB>probabilities out",
                       description="Reads one text per line (TAB-separated for pairs) from stdin or --input and "
                                   "writes label<TAB>probabilities per line; on stdin each line is answered as it arrives.")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--input", help="read texts from this file instead of stdin (batched)")
    p.add_argument("--batch-size", type=int, default=None, help="lines per batch (default: 1 on stdin, 256 for --input)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 matrix work: faster batches on CPUs with AVX512-BF16")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> None:
    from .predict import Predictor

    pred = Predictor(args.model, bf16=args.bf16)
    if args.input:
        try:
            with open(args.input, encoding="utf-8") as f:
                pred.stream(f, sys.stdout, args.batch_size or 256)
        except FileNotFoundError:
            raise DataError(f"{args.input}: file does not exist") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{args.input}: invalid UTF-8 ({e.reason})") from None
    else:
        pred.stream(sys.stdin, sys.stdout, args.batch_size or 1)


def _add_teacher(sub) -> None:
    p = sub.add_parser("teacher", help="step 2: fine-tune a transformers teacher, or score texts with it")
    tsub = p.add_subparsers(dest="teacher_command", metavar="ACTION", required=True)
    f = tsub.add_parser("finetune", help="fine-tune any sequence-classification checkpoint on labelled data",
                        description="Fine-tune a teacher. Resumable: at each dev evaluation the training state goes "
                                    "to OUT/.finetune_checkpoint.pt, and the same command after a kill continues "
                                    "from there (--set checkpoint=false turns this off).")
    f.add_argument("--config", help="JSON with a 'teacher' section (and 'data' with train/dev), e.g. "
                                    "examples/cls_ernie_fc_ch.json; the options below override it")
    f.add_argument("--model", help="checkpoint folder (ERNIE, BERT, RoBERTa, XLM-R ...), cached hub name, or "
                                   "bundled:multilingual-e5-small")
    f.add_argument("--train")
    f.add_argument("--dev")
    f.add_argument("--out", help="folder for the best checkpoint, tokenizer and label map (default: the config's output)")
    f.add_argument("--label-column", default="label")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="training setting, e.g. --set epochs=4 --set lr=5e-5 --set max_len=256 --set pooling=mean")
    f.add_argument("--quiet", action="store_true", help="no progress bar (dev evaluations are still logged)")
    f.set_defaults(func=_run_teacher_finetune)
    q = tsub.add_parser("predict", help="score texts: stdin lines in, text<TAB>label<TAB>probabilities out")
    q.add_argument("--model", required=True, help="a folder written by 'teacher finetune'")
    q.add_argument("--batch-size", type=int, default=1, help="lines per batch on stdin (default 1: answer each line)")
    q.set_defaults(func=_run_teacher_predict)


def _run_teacher_finetune(args) -> None:
    from .config import apply_overrides, from_dict
    from .data.io import ExampleReader
    from .data.labels import LabelMap
    from .teacher.hf import TeacherTrainConfig, finetune

    from .config import load_json

    raw = load_json(args.config) if args.config else {}
    unknown = set(raw) - {"data", "teacher", "output"}
    if unknown:
        raise ConfigError(f"{args.config}: unknown section '{sorted(unknown)[0]}' (a teacher config has data, teacher, output)")
    section = dict(raw.get("teacher", {}))
    if args.model:
        section["model"] = args.model
    cfg = from_dict(TeacherTrainConfig, apply_overrides(section, args.set), "teacher")
    data = raw.get("data", {})
    args.train, args.dev = args.train or data.get("train"), args.dev or data.get("dev")
    args.out = args.out or raw.get("output")
    for name in ("train", "dev", "out"):
        if not getattr(args, name):
            raise ConfigError(f"--{name} is required (or set it in the config)")
    train = list(ExampleReader(args.train, label_column=args.label_column))
    label_map = LabelMap.from_labels(ex.label for ex in train)
    dev = list(ExampleReader(args.dev, label_column=args.label_column, label_map=label_map))
    m = finetune(cfg, train, dev, args.out, label_map, progress=_bars(args))
    print(f"teacher: best dev accuracy {m['dev_accuracy'] * 100:.2f} after {m['steps']} steps "
          f"({m['seconds']:.0f}s); saved {args.out}", file=sys.stderr)


def _run_teacher_predict(args) -> None:
    from .teacher.hf import HFTeacher

    teacher = HFTeacher(args.model)
    buf: list[str] = []

    def flush() -> None:
        if not buf:
            return
        pair = [line.split("\t", 1) for line in buf]
        texts_b = [p[1] if len(p) > 1 else "" for p in pair] if any(len(p) > 1 for p in pair) else None
        sc = teacher.score([p[0] for p in pair], texts_b)
        for line, lab, pr in zip(buf, sc.labels, sc.probs):
            sys.stdout.write(f"{line}\t{lab}\t{' '.join(f'{x:.6f}' for x in pr)}\n")
        sys.stdout.flush()
        buf.clear()

    for line in sys.stdin:
        line = line.rstrip("\r\n")
        if line.strip():
            buf.append(line)
        if len(buf) >= args.batch_size:
            flush()
    flush()


def _add_label(sub) -> None:
    p = sub.add_parser("label", help="step 2: let a teacher label a file (resumable) -> part.1",
                       description="Score every row of --input with the teacher and write label, text and "
                                   "probabilities/logits to --output. Killed and started again with the same "
                                   "command, it continues where it stopped.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="a teacher folder written by 'teacher finetune'")
    who.add_argument("--teacher-cmd",
                     help="external teacher program: reads texts on stdin, writes 'label' or "
                          "'label<TAB>probabilities' per line (started once per batch)")
    p.add_argument("--labels", help="comma-separated label names in probability order, e.g. 0,1 (checked)")
    p.add_argument("--input", required=True, help="texts to label (augmented TSV, TSV/JSONL with text_a, or .txt)")
    p.add_argument("--output", required=True, help="the labelled file (part.1)")
    p.add_argument("--batch-size", type=int, default=256, help="texts per teacher call (default 256)")
    p.add_argument("--chunk-size", type=int, default=1024, help="rows made durable at a time (default 1024)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="a --model teacher's precision: auto = bf16 on a GPU that has it or on a CPU with native "
                        "bf16 (AVX512-BF16/AMX, ~2x faster; same hard labels, probabilities within ~0.02), else fp32")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a teacher call may take (default 600)")
    p.add_argument("--unk-token", default="[UNK]",
                   help="--teacher-cmd's unknown token, put where augmentation wrote [UNK] (a --model teacher "
                        "uses its tokenizer's own)")
    p.add_argument("--cache", help="score cache file of this teacher (created if missing): texts found there are "
                                    "not scored again, new scores are added")
    p.add_argument("--skip-bad-lines", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar; a log line with rows done, rate and time left comes at most once a minute (also when stderr is not a terminal)")
    p.set_defaults(func=_run_label)


def _run_label(args) -> None:
    from .label import label_file
    from .teacher.command import CommandTeacher

    if args.model:
        from .teacher.hf import HFTeacher

        teacher = HFTeacher(args.model, batch_size=args.batch_size, precision=args.precision)
    else:
        teacher = CommandTeacher(args.teacher_cmd, labels=args.labels.split(",") if args.labels else None,
                                 timeout=args.timeout, unk_token=args.unk_token)
    stats = label_file(teacher, args.input, args.output, batch_size=args.batch_size, chunk_size=args.chunk_size,
                       skip_bad_lines=args.skip_bad_lines, progress=_bars(args), cache=args.cache)
    print(f"label: {stats.summary()}; wrote {args.output}", file=sys.stderr)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="the whole distillation from one JSON config: teacher -> augment -> label -> "
                                   "students -> report (finished steps are skipped)")
    p.add_argument("config", help="pipeline JSON config (see examples/pipeline_*.json)")
    p.add_argument("--steps", help=f"comma-separated steps to run (default all: {','.join(('teacher', 'augment', 'label', 'students', 'report'))})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. --set train.lr=1e-3")
    p.add_argument("--force", action="store_true", help="run the chosen steps even if up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_pipeline)


def _run_pipeline(args) -> None:
    from .pipeline import Pipeline, load_config

    cfg = load_config(args.config, args.set)
    Pipeline(cfg, progress=_bars(args)).run(args.steps.split(",") if args.steps else None, force=args.force)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datadistill",
        description="Distil a large text model into a tiny fast student through data: "
                    "augment -> teacher labels -> student trains.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"datadistill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_augment(sub)
    _add_teacher(sub)
    _add_label(sub)
    _add_student(sub)
    _add_eval(sub)
    _add_predict(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in model folders: the command that made them
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.func(args)
    except (DataError, ConfigError, ModelFolderError, TeacherError) as e:
        print(f"datadistill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"datadistill {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
