"""`datadistill` command line: one sub-command per pipeline step.

Nothing heavy is imported here (each command imports what it needs when it runs), so `--help`
answers without loading torch or transformers.
"""

from __future__ import annotations

import argparse
import sys

from .errors import ConfigError, DataError, ModelFolderError, TeacherError
from .log import logger, setup_logging
from .teacher.base import PRECISIONS

# sections only a pipeline config has (run_config.RunConfig), named here so --help imports no more
PIPELINE_SECTIONS = {"work", "augment", "label", "students", "train", "distill", "shards", "teacher_dir"}


def _bars(args) -> bool:
    """Progress bars on a terminal only (not in logs or pipes), and never with --quiet."""
    return not args.quiet and sys.stderr.isatty()


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, got {text}")
    return value


def _common() -> argparse.ArgumentParser:
    """-v / -q for every command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages, with times and module names")
    p.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        help="no progress bars (long steps still log progress once a minute); -qq: warnings and errors only",
    )
    return p


def _add_augment(sub) -> None:
    p = sub.add_parser(
        "augment",
        parents=[_common()],
        help="step 1: make new unlabelled texts from labelled ones",
        description="Make new unlabelled texts: [UNK] noise, same-POS replacement, n-gram sampling.",
    )
    p.add_argument("--input", required=True, help="labelled TSV/JSONL (or plain text) to augment")
    p.add_argument("--output", required=True, help="augmented TSV to write")
    p.add_argument("--n-iter", type=int, default=10, help="variants per source (default 10)")
    p.add_argument("--p-unk", type=float, default=0.1, help="probability a token becomes [UNK] (default 0.1)")
    p.add_argument(
        "--p-pos", type=float, default=0.1, help="probability a token gets a same-POS replacement (default 0.1)"
    )
    p.add_argument(
        "--p-ng", type=float, default=0.25, help="probability an example becomes one random span (default 0.25)"
    )
    p.add_argument("--ngram-max", type=int, default=None, help="longest span n-gram sampling keeps (default: no limit)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tokenizer", default="jieba", help="jieba (default), char or whitespace")
    p.add_argument("--workers", type=int, default=1, help="processes for POS tagging (default 1)")
    p.add_argument("--label-column", default="label")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count bad input lines instead of stopping")
    p.set_defaults(func=_run_augment)


def _run_augment(args) -> None:
    from .augment import AugmentConfig, augment_file
    from .config import from_dict

    cfg = from_dict(
        AugmentConfig,
        dict(
            n_iter=args.n_iter,
            p_unk=args.p_unk,
            p_pos=args.p_pos,
            p_ng=args.p_ng,
            ngram_max=args.ngram_max,
            seed=args.seed,
            tokenizer=args.tokenizer,
            workers=args.workers,
        ),
        "augment",
    )
    stats = augment_file(
        args.input,
        args.output,
        cfg,
        label_column=args.label_column,
        skip_bad_lines=args.skip_bad_lines,
        progress=_bars(args),
    )
    logger.info(f"augment: {stats.summary()}; wrote {args.output}")


def _add_student(sub) -> None:
    p = sub.add_parser("student", help="step 3: train a student (BOW, CNN, LSTM)")
    ssub = p.add_subparsers(dest="student_command", metavar="ACTION", required=True)
    t = ssub.add_parser(
        "train",
        parents=[_common()],
        help="train a student from a JSON config",
        description="Train on data.train (part.0) + data.teacher_labelled (part.1), select on dev, "
        "report test, save a self-contained model folder. The mini-batch loop (adamw) saves its "
        "state at each dev evaluation to OUTPUT/.train_checkpoint.pt and the same command after a "
        "kill continues from there (--set train.checkpoint=false turns this off); a linear bag "
        "solved by L-BFGS (train.solver auto or lbfgs) takes minutes and starts again instead; "
        "its train.l2_c (auto: C 1, 4, 16, 64, the best on dev, named in metrics.json) is the inverse "
        "L2 strength; train.nb_scale (default false; null: single texts only) scales its inputs by their "
        "naive-Bayes log-count ratio first (NBSVM).",
    )
    t.add_argument("--config", help="JSON run config (see examples/)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=1e-3 (repeatable); values are JSON, and .5 or +2 are "
        "numbers where the key takes one",
    )
    t.set_defaults(func=_run_student_train)


def _run_student_train(args) -> None:

    from .student import load_run_config, train_student

    cfg = load_run_config(args.config, args.set)
    train_student(cfg, progress=_bars(args), command=_command(args))


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        parents=[_common()],
        help="accuracy, macro-F1, per-class scores and confusion of a model on a labelled file",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="labelled TSV/JSONL")
    p.add_argument("--label-column", default="label")
    p.add_argument(
        "--positive",
        help="the positive class of a two-class task, for its F1, AUC and pair-order ratio (default: '1' when "
        "the labels are two and include it)",
    )
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> None:
    from .evaluate import format_metrics
    from .student import dump_json, evaluate_folder

    from pathlib import Path

    from .datasets import resolve

    if args.json:
        from .data.io import check_output

        out = Path(args.json).resolve()
        if out == resolve(args.data).resolve() or out.parent == Path(args.model).resolve():
            raise DataError(f"{args.json}: is the evaluated data or a file of the model; --json names a new file")
        check_output(args.json, "--json")  # a folder, or a path under a file: said before any work
    m = evaluate_folder(args.model, args.data, args.label_column, args.positive)
    print(format_metrics(m))
    if "ranking" not in m and len(m["labels"]) == 2:
        print(f"(for F1, AUC and the pair-order ratio of one class: --positive {m['labels'][1]})")
    if args.json:
        dump_json(m, args.json)


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        parents=[_common()],
        help="predict with a model folder: text lines in, label<TAB>probabilities out",
        description="Reads one text per line (TAB-separated for pairs) from stdin or --input and "
        "writes label<TAB>probabilities per line, one output line per input line (a blank line is answered by a "
        "blank line); on stdin each line is answered as it arrives. A --input file whose header has text_a is "
        "read as a table.",
    )
    p.add_argument("--model", required=True, help="model folder, or an export folder (onnxruntime)")
    p.add_argument("--input", help="read texts from this file instead of stdin (batched)")
    p.add_argument(
        "--batch-size", type=_positive, default=None, help="lines per batch (default: 1 on stdin, 256 for --input)"
    )
    p.add_argument("--bf16", action="store_true", help="bfloat16 matrix work: faster batches on CPUs with AVX512-BF16")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> None:
    from pathlib import Path

    from .predict import check_pair_columns, detect_backend, load_predictor

    backend = detect_backend(args.model)
    pred = load_predictor(args.model, backend, **({"bf16": args.bf16} if backend == "torch" else {}))
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise DataError(f"{path}: " + ("is a folder, expected a file" if path.is_dir() else "file does not exist"))
        with open(path, "rb") as f:
            header = f.readline().decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n").split("\t")
        header = [c.strip() for c in header]  # as the reader names its columns
        if "text_a" in header:  # a table: its text columns, not its header line
            from .data.io import ExampleReader

            check_pair_columns(pred, path, "text_b" in header, args.model)  # before the whole file is read
            exs = list(ExampleReader(path, require_label=False))
            lines = [e.text_a + (f"\t{e.text_b}" if e.text_b is not None else "") for e in exs]
        else:
            lines = _utf8_lines(path)
        pred.stream(lines, sys.stdout, args.batch_size or 256)
    else:
        pred.stream(_utf8_lines(_stdin(), "stdin"), sys.stdout, args.batch_size or 1)


def _stdin():
    if sys.stdin is None or sys.stdin.closed:
        raise DataError("stdin is closed: pipe texts in or pass --input FILE")
    return sys.stdin.buffer


def _utf8_lines(source, name: str | None = None):
    """The lines of a text file (a path or a binary stream); invalid UTF-8 is reported with its line number."""
    f = source if hasattr(source, "read") else open(source, "rb")
    name = name or str(source)
    try:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{name}, line {n}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1})"
                ) from None
            if "\r" in text.rstrip("\r\n"):
                raise DataError(f"{name}, line {n}: a carriage return (CR) inside the line; use LF line ends")
            yield text.lstrip("\ufeff") if n == 1 else text
    finally:
        if f is not source:
            f.close()


def _command(args) -> str:
    """The command line that ran, as recorded in the folders it writes."""
    import shlex

    return "datadistill " + " ".join(shlex.quote(a) for a in args.argv)


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        parents=[_common()],
        help="export a student to ONNX: a folder onnxruntime predicts from without torch",
        description="Write OUT/model.onnx (dynamic batch and length) with the model folder's config, vocabulary "
        "and label map, and OUT/export.json (the command, versions, the check against torch). Needs "
        "pip install 'datadistill[export]'. Serve OUT with 'datadistill serve --model OUT'.",
    )
    p.add_argument("--model", required=True, help="student model folder")
    p.add_argument("--out", required=True, help="export folder to write")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="onnx (default; the only format)")
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help="int8: dynamic INT8 quantization of the weights (smaller; probabilities close to, not equal to, torch's)",
    )
    p.add_argument("--opset", type=_positive, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=_run_export)


def _run_export(args) -> None:

    from .export import export_folder

    export_folder(
        args.model,
        args.out,
        fmt=args.format,
        quantize=args.quantize,
        opset=args.opset,
        command=_command(args),
    )


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        parents=[_common()],
        help="serve a student or an ONNX export over HTTP (POST /predict, GET /health, /info, /docs)",
        description="Answer POST /predict with labels and probabilities; concurrent requests share one forward "
        "pass (micro-batching). SIGTERM or Ctrl-C stops it after answering the requests in flight. Needs "
        "pip install 'datadistill[serve]' (and [onnx] for an export folder). The API: docs/serve.md.",
    )
    p.add_argument("--model", required=True, help="student model folder (torch) or export folder (onnx)")
    p.add_argument("--backend", choices=["torch", "onnx"], help="default: onnx for an export folder, else torch")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, logged)")
    p.add_argument("--workers", type=_positive, default=1, help="server processes, each with the model (default 1)")
    p.add_argument("--threads", type=_positive, default=1, help="intra-op threads of each process's model (default 1)")
    p.add_argument(
        "--max-batch", type=_positive, default=256, help="most texts in one micro-batch, one model call (default 256)"
    )
    p.add_argument(
        "--sub-batch",
        type=_positive,
        default=32,
        help="texts per forward pass within a batch, grouped by length: less padding than one pass (default 32)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=2.0,
        help="how long a request may wait for others to fill its batch (default 2; 0: never wait)",
    )
    p.add_argument("--max-body-bytes", type=_positive, default=4 * 2**20, help="largest request body (default 4 MiB)")
    p.add_argument(
        "--max-texts", type=_positive, default=1024, help="most texts or pairs in one request (default 1024)"
    )
    p.add_argument("--max-text-chars", type=_positive, default=10_000, help="longest text (default 10,000 characters)")
    p.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=30.0,
        help="seconds shutdown waits for requests in flight (default 30)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    p.set_defaults(func=_run_serve)


def _run_serve(args) -> None:
    from .config import from_dict
    from .serve.server import ServeSettings, serve

    keys = ("model", "backend", "host", "port", "workers", "threads", "max_batch", "sub_batch", "max_wait_ms")
    keys += ("max_body_bytes", "max_texts", "max_text_chars", "graceful_timeout", "access_log")
    values = {k: getattr(args, k) for k in keys}
    values["verbosity"] = 1 if args.verbose else -1 if args.quiet >= 2 else 0
    serve(from_dict(ServeSettings, values, "serve"))


def _add_teacher(sub) -> None:
    p = sub.add_parser("teacher", help="step 2: fine-tune a transformers teacher, or score texts with it")
    tsub = p.add_subparsers(dest="teacher_command", metavar="ACTION", required=True)
    f = tsub.add_parser(
        "finetune",
        parents=[_common()],
        help="fine-tune any sequence-classification checkpoint on labelled data",
        description="Fine-tune a teacher. Resumable: at each dev evaluation the training state goes "
        "to OUT/.finetune_checkpoint.pt, and the same command after a kill continues "
        "from there (--set checkpoint=false turns this off).",
    )
    f.add_argument(
        "--config",
        help="JSON with a 'teacher' section (and 'data' with train/dev), e.g. "
        "examples/cls_ernie_fc_ch.json; the options below override it (a pipeline config's teacher: "
        "datadistill run CONFIG --steps teacher)",
    )
    f.add_argument(
        "--model",
        help="checkpoint folder (ERNIE, BERT, RoBERTa, XLM-R ...), cached hub name, or bundled:multilingual-e5-small",
    )
    f.add_argument("--train")
    f.add_argument("--dev")
    f.add_argument(
        "--out", help="folder for the best checkpoint, tokenizer and label map (default: the config's output)"
    )
    f.add_argument("--label-column", default="label")
    f.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="training setting, e.g. --set epochs=4 --set lr=5e-5 --set max_len=256 --set pooling=mean",
    )
    f.set_defaults(func=_run_teacher_finetune)
    q = tsub.add_parser(
        "predict", parents=[_common()], help="score texts: stdin lines in, text<TAB>label<TAB>probabilities out"
    )
    q.add_argument("--model", required=True, help="a folder written by 'teacher finetune'")
    q.add_argument(
        "--batch-size", type=_positive, default=1, help="lines per batch on stdin (default 1: answer each line)"
    )
    q.set_defaults(func=_run_teacher_predict)


def _run_teacher_finetune(args) -> None:
    from .config import apply_overrides, from_dict, load_json
    from .data.io import read_splits
    from .teacher.hf import TeacherTrainConfig, finetune

    raw = load_json(args.config) if args.config else {}
    unknown = set(raw) - {"data", "teacher", "output"}
    if unknown & PIPELINE_SECTIONS:  # the run's own config: its teacher step is `run --steps teacher`
        raise ConfigError(
            f"{args.config} is a pipeline config (it has '{sorted(unknown & PIPELINE_SECTIONS)[0]}'): fine-tune "
            f"its teacher with `datadistill run {args.config} --steps teacher` (--set teacher.KEY=VALUE to "
            "change a setting); `teacher finetune --config` takes data, teacher and output only"
        )
    if unknown:
        raise ConfigError(
            f"{args.config}: unknown section '{sorted(unknown)[0]}' (a teacher config has data, teacher, output)"
        )
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
    train, dev, _, label_map = read_splits(args.train, args.dev, label_column=args.label_column)
    m = finetune(cfg, train, dev, args.out, label_map, progress=_bars(args))
    logger.info(
        f"teacher: best dev accuracy {m['dev_accuracy'] * 100:.2f} after {m['steps']} steps "
        f"({m['seconds']:.0f}s); saved {args.out}"
    )


def _run_teacher_predict(args) -> None:
    from .teacher.hf import HFTeacher

    teacher = HFTeacher(args.model)
    buf: list[str] = []

    def flush() -> None:
        texts = [line for line in buf if line.strip()]
        if texts:
            pair = [line.split("\t", 1) for line in texts]
            texts_b = [p[1] if len(p) > 1 else "" for p in pair] if any(len(p) > 1 for p in pair) else None
            sc = teacher.score([p[0] for p in pair], texts_b)
            answers = iter(zip(sc.labels, sc.probs))
        for line in buf:  # one answer per input line; a blank line is answered by a blank line
            if line.strip():
                lab, pr = next(answers)
                sys.stdout.write(f"{line}\t{lab}\t{' '.join(f'{x:.6f}' for x in pr)}\n")
            else:
                sys.stdout.write("\n")
        sys.stdout.flush()
        buf.clear()

    for line in _utf8_lines(_stdin(), "stdin"):
        buf.append(line.rstrip("\r\n"))
        if len(buf) >= args.batch_size:
            flush()
    flush()


def _add_label(sub) -> None:
    p = sub.add_parser(
        "label",
        parents=[_common()],
        help="step 2: let a teacher label a file (resumable) -> part.1",
        description="Score every row of --input with the teacher and write label, text and "
        "probabilities/logits to --output. Killed and started again with the same "
        "command, it continues where it stopped.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="a teacher folder written by 'teacher finetune'")
    who.add_argument(
        "--teacher-cmd",
        help="external teacher program: reads texts on stdin, writes 'label' or "
        "'label<TAB>probabilities' per line (started once per batch)",
    )
    p.add_argument("--labels", help="comma-separated label names in probability order, e.g. 0,1 (checked)")
    p.add_argument("--input", required=True, help="texts to label (augmented TSV, TSV/JSONL with text_a, or .txt)")
    p.add_argument("--output", required=True, help="the labelled file (part.1)")
    p.add_argument("--batch-size", type=_positive, default=256, help="texts per teacher call (default 256)")
    p.add_argument("--chunk-size", type=_positive, default=1024, help="rows made durable at a time (default 1024)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="a --model teacher's precision: auto = bf16 on a GPU that has it or on a CPU with native "
        "bf16 (AVX512-BF16/AMX, ~2x faster; same hard labels, probabilities within ~0.02), else fp32",
    )
    p.add_argument("--timeout", type=_seconds, default=600.0, help="seconds a teacher call may take (default 600)")
    p.add_argument(
        "--unk-token",
        default="[UNK]",
        help="--teacher-cmd's unknown token, put where augmentation wrote [UNK] (a --model teacher "
        "uses its tokenizer's own)",
    )
    p.add_argument(
        "--cache",
        help="score cache file of this teacher (created if missing): texts found there are "
        "not scored again, new scores are added",
    )
    p.add_argument("--skip-bad-lines", action="store_true")
    p.set_defaults(func=_run_label)


def _run_label(args) -> None:
    from .distributed import world
    from .label import label_file
    from .teacher.command import CommandTeacher

    w = world()  # under torchrun: this rank labels its share, rank 0 merges
    if args.model:
        from .teacher.hf import HFTeacher

        teacher = HFTeacher(args.model, batch_size=args.batch_size, precision=args.precision, device=w.device())
        if args.labels and args.labels.split(",") != teacher.label_names:
            raise ConfigError(
                f"--labels {args.labels}: the teacher in {args.model} has labels "
                f"{','.join(teacher.label_names)} (its teacher.json); leave --labels out"
            )
    else:
        teacher = CommandTeacher(
            args.teacher_cmd,
            labels=args.labels.split(",") if args.labels else None,
            timeout=args.timeout,
            unk_token=args.unk_token,
        )
    stats = label_file(
        teacher,
        args.input,
        args.output,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        skip_bad_lines=args.skip_bad_lines,
        progress=_bars(args) and w.main,
        cache=args.cache,
        world=w,
    )
    if w.main:
        logger.info(f"label: {stats.summary()}; wrote {args.output}")


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        parents=[_common()],
        help="the whole distillation: teacher -> augment -> label -> students -> report (finished steps are skipped)",
        description="Run the pipeline from a JSON config, or on your own files with no config: "
        "datadistill run --train T --dev D --test E [--unlabelled U ...]. Unset settings take the measured best "
        "defaults; --print-config shows the full effective config, ready to save and edit. By default the "
        "label step averages the teacher with a classical TF-IDF model when that model is within 3 points of it on "
        'dev (label.classical_weight "auto"; 0: the teacher alone).',
    )
    p.add_argument("config", nargs="?", help="pipeline JSON config (see examples/); optional with --train/--dev/--test")
    p.add_argument("--train", help="labelled training file (TSV/JSONL, or a built-in name such as chnsenticorp:train)")
    p.add_argument("--dev", help="labelled file to select models on")
    p.add_argument("--test", help="labelled file the report measures on")
    p.add_argument("--unlabelled", nargs="+", metavar="FILE", help="your in-domain unlabelled texts (optional)")
    p.add_argument("--students", help="comma-separated student architectures (default with no config: bow,cnn)")
    p.add_argument("--work", help="work folder (default with no config: work/run)")
    p.add_argument(
        "--steps",
        help=f"comma-separated steps to run (default all: {','.join(('teacher', 'augment', 'label', 'students', 'report'))})",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=1e-3; values are JSON, and .5 or +2 are numbers where the "
        "key takes one",
    )
    p.add_argument("--force", action="store_true", help="run the chosen steps even if up to date")
    p.add_argument("--print-config", action="store_true", help="print the full effective config as JSON and stop")
    p.set_defaults(func=_run_pipeline)


def _run_pipeline(args) -> None:
    import json

    from .pipeline import Pipeline, config_from_args

    cfg = config_from_args(
        args.config,
        args.set,
        train=args.train,
        dev=args.dev,
        test=args.test,
        unlabelled=args.unlabelled,
        students=args.students,
        work=args.work,
    )
    if args.print_config:
        from .config import to_dict
        from .run_config import resolved_teacher

        cfg.teacher = resolved_teacher(cfg.teacher)  # the values this machine will use, not "auto"
        print(json.dumps(to_dict(cfg), ensure_ascii=False, indent=1))
        return
    Pipeline(cfg, progress=_bars(args)).run(args.steps.split(",") if args.steps is not None else None, force=args.force)


def _add_datasets(sub) -> None:
    p = sub.add_parser(
        "datasets", parents=[_common()], help="list the built-in data sets (names to use wherever a file goes)"
    )
    p.set_defaults(func=_run_datasets)


def _run_datasets(args) -> None:
    from .datasets import listing

    rows = listing()
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'rows':>6}  what")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['rows']:>6,}  {r['what']}")
    for source in dict.fromkeys(r["source"] for r in rows):
        print(f"source: {source}")


def _add_split(sub) -> None:
    p = sub.add_parser(
        "split",
        parents=[_common()],
        help="a fixed train/dev/test split of one labelled TSV (stratified by class or grouped by query)",
        description="Writes OUT/train.tsv, dev.tsv, test.tsv (rows unchanged, header kept) and split.json (the "
        "plan, the source's digest, the rows per part and label). With --train N, the rows left over go to "
        "OUT/unlabelled.tsv with their text columns only.",
    )
    p.add_argument("input", help="labelled TSV")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--dev", type=int, required=True, help="rows in dev")
    p.add_argument("--test", type=int, required=True, help="rows in test")
    p.add_argument("--train", type=int, help="rows in train (default: all the others)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stratify", metavar="COLUMN", help="keep each class's share of COLUMN in every part")
    g.add_argument("--group", metavar="COLUMN", help="keep rows sharing COLUMN (text_a, text_b or qid) in one part")
    p.add_argument("--label-column", default="label", help="the label column (when not stratifying by one)")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_run_split)


def _run_split(args) -> None:
    from .data.split import SplitPlan, split_file

    for name in ("dev", "test", "train"):
        v = getattr(args, name)
        if v is not None and v < (0 if name != "train" else 1):
            raise ConfigError(f"--{name} must be {'at least 1' if name == 'train' else '0 or more'}, got {v}")
    rec = split_file(
        args.input,
        args.out,
        SplitPlan(args.dev, args.test, args.train, args.stratify, args.group, args.seed),
        args.label_column,
    )
    for name, c in rec["parts"].items():
        labels = ", ".join(f"{k} {v}" for k, v in c.get("labels", {}).items())
        print(f"{args.out}/{name}.tsv: {c['rows']:,} rows" + (f" ({labels})" if labels else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datadistill",
        description="Distil a large text model into a tiny fast student through data: "
        "augment -> teacher labels -> student trains.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"datadistill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_datasets(sub)
    _add_split(sub)
    _add_augment(sub)
    _add_teacher(sub)
    _add_label(sub)
    _add_student(sub)
    _add_eval(sub)
    _add_predict(sub)
    _add_export(sub)
    _add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in model folders: the command that made them
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import os

    other_rank = int(os.environ.get("RANK", "0")) > 0  # under torchrun: rank 0 speaks for the job
    setup_logging(1 if args.verbose else -1 if args.quiet >= 2 or other_rank else 0)
    try:
        args.func(args)
        sys.stdout.flush()
    except (DataError, ConfigError, ModelFolderError, TeacherError) as e:
        print(f"datadistill {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line
        return 2
    except BrokenPipeError:  # the reader went away (`| head -1`): stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except OSError as e:  # a folder where a file belongs, no permission, a full disk ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"datadistill {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"datadistill {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if "datadistill.distributed" in sys.modules:  # a torchrun rank leaves its process group
            sys.modules["datadistill.distributed"].shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
