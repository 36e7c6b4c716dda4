"""`datadistill` command line: one sub-command per pipeline step."""
from __future__ import annotations

import argparse
import sys

from .config import ConfigError
from .data.io import DataError


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
                         skip_bad_lines=args.skip_bad_lines, progress=not args.quiet)
    print(f"augment: {stats.summary()}; wrote {args.output}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datadistill",
        description="Distil a large text model into a tiny fast student through data: "
                    "augment -> teacher labels -> student trains.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"datadistill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_augment(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.func(args)
    except (DataError, ConfigError) as e:
        print(f"datadistill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"datadistill {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
