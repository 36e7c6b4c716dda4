"""How much do a teacher's soft labels carry? Compare the part.1 files of two or more runs.

    python bench/bench_soft_labels.py work/cpu_case2_all/student/train/part.1 work/case2_aug/student/train/part.1

For each file, over the texts all files share: mean top probability, share of texts whose top
probability is below 0.8 and 0.6, mean entropy (bits), and the share of hard labels equal to the
first file's; `--temperature T` shows the probabilities as the `kl` loss sees them (softmax of
logits / T). A teacher that is surer of itself on augmented (noisy, truncated) texts hands the
student nearly hard labels; `distill.temperature` > 1 softens its logits again. Prints a table and
writes bench/out/soft_labels.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from datadistill.data import ExampleReader

HERE = Path(__file__).resolve().parent


def read_scores(path: str, temperature: float) -> dict[tuple[str, str | None], tuple[str, np.ndarray]]:
    """(text_a, text_b) -> (hard label, probabilities at `temperature`) of a teacher-labelled file."""
    out = {}
    for ex in ExampleReader(path, require_label=True):
        if temperature == 1 and ex.probs is not None:
            p = np.asarray(ex.probs, dtype=np.float64)
        elif ex.logits is not None:  # softmax(z / T), as the kl loss sees the teacher
            z = np.asarray(ex.logits, dtype=np.float64) / temperature
            p = np.exp(z - z.max())
            p /= p.sum()
        else:
            raise SystemExit(
                f"{path}, line {ex.line}: no teacher " + ("probs or logits" if temperature == 1 else "logits")
            )
        out[(ex.text_a, ex.text_b)] = (ex.label, p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part1", nargs="+", help="teacher-labelled files (WORK/student/train/part.1)")
    ap.add_argument("--temperature", type=float, default=1.0, help="soften the logits as distill.temperature does")
    ap.add_argument("--out", default=str(HERE / "out" / "soft_labels.json"))
    args = ap.parse_args()
    files = [read_scores(p, args.temperature) for p in args.part1]
    common = [k for k in files[0] if all(k in f for f in files[1:])]
    if not common:
        raise SystemExit("the files share no text")
    first = [files[0][k][0] for k in common]
    rows = []
    for path, f in zip(args.part1, files):
        p = np.stack([f[k][1] for k in common])  # [N, C]
        top = p.max(1)
        entropy = -(p * np.log2(np.clip(p, 1e-12, 1))).sum(1)
        rows.append(
            {
                "file": path,
                "temperature": args.temperature,
                "rows": len(f),
                "common": len(common),
                "mean_top_prob": float(top.mean()),
                "top_below_0.8": float((top < 0.8).mean()),
                "top_below_0.6": float((top < 0.6).mean()),
                "mean_entropy_bits": float(entropy.mean()),
                "same_hard_label_as_first": float(np.mean([f[k][0] == a for k, a in zip(common, first)])),
            }
        )
    print(f"{len(common):,} texts in all files; temperature {args.temperature:g}")
    print(f"{'file':60s} {'top p':>6s} {'<0.8':>6s} {'<0.6':>6s} {'H bits':>7s} {'= first':>8s}")
    for r in rows:
        print(
            f"{r['file'][-60:]:60s} {r['mean_top_prob']:6.3f} {r['top_below_0.8']:6.1%} {r['top_below_0.6']:6.1%} "
            f"{r['mean_entropy_bits']:7.3f} {r['same_hard_label_as_first']:8.2%}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
