"""The seed's result table: run a distillation pipeline and keep its measured report.

    python bench/bench_distill.py examples/pipeline_quick.json            # 2 CPU cores, ~15-20 min
    python bench/bench_distill.py examples/pipeline_case2_aug.json        # augmentation only (GPU)
    python bench/bench_distill.py examples/pipeline_case1_unlabelled.json # + the unlabelled pool (GPU)
    python bench/bench_distill.py examples/pipeline_cpu_case2.json        # 256-token teacher on 2 CPU cores
    python bench/bench_distill.py examples/pipeline_cpu_case1.json        #   (shared with case 1), 30k labels
    python bench/bench_distill.py examples/pipeline_cpu_case2_all.json    # case 2, all 95k augmented texts labelled

Extra arguments go to `datadistill run` (e.g. --set data.max_label_rows=20000). Prints the report
table, the seed's figures beside it, and writes bench/out/distill_<config name>.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from datadistill.log import setup_logging
from datadistill.pipeline import Pipeline, load_config

HERE = Path(__file__).resolve().parent
SEED = {"teacher": 95.4, "bow_base": 90.1, "cnn_base": 91.6, "lstm_base": 91.2, "bow": 91.4, "cnn": 92.4, "lstm": 93.9}


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    config, rest = sys.argv[1], sys.argv[2:]
    overrides = [rest[i + 1] for i, a in enumerate(rest) if a == "--set"]
    cfg = load_config(config, overrides)
    t0 = time.perf_counter()
    setup_logging()
    pipe = Pipeline(cfg, progress=sys.stderr.isatty())
    pipe.run()
    lay = pipe.layout
    report = json.loads((lay.report / "report.json").read_text())
    report["wall_seconds"] = time.perf_counter() - t0
    report["config"] = config
    report["overrides"] = overrides
    report["step_seconds"] = {
        s: json.loads(lay.record(s).read_text())["seconds"] for s in pipe.steps if lay.record(s).exists()
    }
    print(
        f"{'model':<10} {'kind':<9} {'test acc':>8} {'seed':>5} {'F1':>6} {'texts/s':>9} {'p50 ms':>7} {'speed-up':>9}"
    )
    for r in report["rows"]:
        print(
            f"{r['model']:<10} {r['kind']:<9} {r['test_accuracy'] * 100:8.2f} {SEED.get(r['model'], float('nan')):5.1f} "
            f"{r['test_macro_f1'] * 100:6.2f} {r['texts_per_s']:9,.0f} {r['p50_ms']:7.2f} {r['speedup']:8,.0f}x"
        )
    out = HERE / "out" / f"distill_{Path(config).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    png = lay.report / "accuracy_vs_speed.png"
    if png.exists():
        shutil.copyfile(png, out.with_suffix(".png"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
