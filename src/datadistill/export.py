"""Export a student folder to ONNX: a self-contained folder that onnxruntime predicts from without torch.

OUT/model.onnx     the network: the featurizer's arrays in (ids_a [B, L], len_a [B], ngr_a [B, G]; _b
                   too for pairs), logits [B, C] out; batch size and lengths are dynamic
OUT/config.json    copied from the model folder: features (tokenizer, max_len, n-grams), dims, the
OUT/vocab.txt      command that trained it; the vocabulary and the label map, so the project's own
OUT/labels.json    tokenization (onnx_predict.py) feeds the graph exactly what torch's student reads
OUT/export.json    format, opset, inputs, quantization, source folder, versions, the largest logit
                   difference from torch measured on a probe batch, the command that exported it

torch's legacy (TorchScript-tracing) exporter is used: on torch 2.13 it exports all three students,
the LSTM's packed sequences included (as an ONNX LSTM with sequence_lens), while the dynamo exporter
fails on pack_padded_sequence and needs onnxscript besides.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import ConfigError
from .extras import require
from .log import logger as _root

log = _root.getChild("export")

FORMATS = ("onnx",)
QUANTIZE = ("int8",)
OPSET = 17
EXPORT_FILE = "export.json"
ONNX_FILE = "model.onnx"
MIN_OPSET = 11  # int64 Clip and the LSTM's sequence_lens need at least this
MAX_FP32_DIFF = 1e-4  # an fp32 export whose logits differ more from torch's on the probe batch is refused


def export_folder(
    model_dir: str | Path,
    out_dir: str | Path,
    fmt: str = "onnx",
    quantize: str | None = None,
    opset: int = OPSET,
    command: str | None = None,
) -> dict:
    """Export the student in `model_dir` to `out_dir` (see the module doc); returns export.json's content."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if quantize not in (None, *QUANTIZE):
        raise ConfigError(f"--quantize {quantize}: expected one of {', '.join(QUANTIZE)}")
    require("onnx", "exporting to ONNX")
    ort = require("onnxruntime", "exporting to ONNX", extra="export")
    from .modelio import load_folder

    if not str(out_dir).strip():
        raise ConfigError("--out is empty: name the export folder to write")
    lo, hi = MIN_OPSET, torch.onnx._constants.ONNX_MAX_OPSET
    if not lo <= opset <= hi:
        raise ConfigError(f"--opset {opset}: this torch exports opsets {lo} to {hi}")
    model_dir, out_dir = Path(model_dir), Path(os.path.abspath(out_dir))  # `--out .` has a name this way
    model, featurizer, label_map, config = load_folder(model_dir)
    _check_out(model_dir, out_dir)
    from .lock import exclusive

    with exclusive(out_dir, "ONNX export"):  # one export per folder at a time
        # every file is written into a new folder beside OUT, which then takes OUT's place: a reader
        # never sees a graph from one export and a config from another
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        try:
            info = _export_into(
                work, model, featurizer, label_map, config, model_dir, fmt, quantize, opset, command, ort
            )
            old = out_dir.with_name(f".{out_dir.name}.old") if out_dir.exists() else None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
                out_dir.rename(old)
            work.rename(out_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    pair, diff = info["pair"], info["probe_max_abs_logit_diff"]
    size = (out_dir / ONNX_FILE).stat().st_size / 2**20
    log.info(
        f"export: {config['arch']}{' (pairs)' if pair else ''} -> {out_dir / ONNX_FILE} "
        f"({size:.1f} MiB{', int8' if quantize else ''}; max |logit - torch| {diff:.1e} on a probe batch)"
    )
    return info


def _export_into(work: Path, model, featurizer, label_map, config, model_dir: Path, fmt, quantize, opset, command, ort):
    """Write the whole export folder's content into `work`; returns export.json's content."""
    from .modelio import SHARED

    pair = bool(model.dims.pair)
    try:
        diff, inputs = _write_onnx(model, featurizer, work / ONNX_FILE, opset, quantize, ort)
    except (RuntimeError, ValueError, torch.onnx.errors.OnnxExporterError) as e:
        raise ConfigError(
            f"{model_dir}: ONNX export at opset {opset} failed: {' '.join(str(e).split())[:300]}"
        ) from None
    if quantize is None and not diff <= MAX_FP32_DIFF:
        raise ConfigError(
            f"{model_dir}: the ONNX graph's logits differ from torch's by {diff:.2e} on a probe batch "
            f"(more than {MAX_FP32_DIFF:g}); the export is not usable"
        )
    for name in SHARED + ("metrics.json",):
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, work / name)
    info = {
        "format": fmt,
        "file": ONNX_FILE,
        "opset": opset,
        "quantize": quantize,
        "arch": config["arch"],
        "pair": pair,
        "labels": label_map.labels,
        "inputs": inputs,
        "outputs": ["logits"],
        "probe_max_abs_logit_diff": diff,
        "source": str(model_dir.resolve()),
        "datadistill_version": __version__,
        "torch_version": torch.__version__,
        "onnxruntime_version": ort.__version__,
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
    }
    (work / EXPORT_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return info


def _write_onnx(model, featurizer, path: Path, opset: int, quantize: str | None, ort) -> tuple[float, list[str]]:
    """Trace the student on a probe batch into `path` (quantized if asked); returns the largest logit
    difference from torch on another probe batch, and the graph's input names."""
    pair = bool(model.dims.pair)
    probe = _probe_batch(featurizer, len(featurizer.vocab), pair)
    names = list(probe)
    graph = _Flat(model.for_export(), names).eval()
    dynamic = {k: {0: "batch"} if k.startswith("len_") else {0: "batch", 1: f"{k}_width"} for k in names}
    fp32 = path.with_name(path.name + ".fp32") if quantize else path
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                graph,
                tuple(torch.from_numpy(probe[k]) for k in names),
                str(fp32),
                dynamo=False,
                input_names=names,
                output_names=["logits"],
                dynamic_axes={**dynamic, "logits": {0: "batch"}},
                opset_version=opset,
            )
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            with _quiet():
                quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, reduce_range=True)
    finally:
        if fp32 != path:
            fp32.unlink(missing_ok=True)
    session = _session(ort, path)
    inputs = [i.name for i in session.get_inputs()]
    check = _probe_batch(featurizer, len(featurizer.vocab), pair, seed=1)
    with torch.inference_mode():
        want = model({k: torch.from_numpy(v) for k, v in check.items()}).numpy()
    got = session.run(["logits"], {k: check[k] for k in inputs})[0]
    return float(np.abs(got - want).max()), inputs


@contextlib.contextmanager
def _quiet():
    """Keep the exporter's and the quantizer's notes off the terminal (torch's C++ "shape inference of
    prim::PackPadded is missing", the legacy exporter's deprecation, onnxruntime's "consider
    pre-processing"): none concerns these graphs, whose logits are checked against torch's. They go
    to the debug log instead."""
    sys.stderr.flush()
    saved, disabled = os.dup(2), logging.root.manager.disable
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        logging.disable(logging.WARNING)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logging.disable(disabled)
            f.seek(0)
            notes = f.read().decode("utf-8", "replace").strip()
            if notes:
                log.debug(f"export notes: {notes}")


class _Flat(torch.nn.Module):
    """A network that takes the batch dict, called with its arrays as positional inputs in `names` order."""

    def __init__(self, net: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.net, self.names = net, names

    def forward(self, *arrays: torch.Tensor) -> torch.Tensor:
        return self.net(dict(zip(self.names, arrays)))


def _probe_batch(featurizer, vocab_size: int, pair: bool, seed: int = 0) -> dict[str, np.ndarray]:
    """A small batch of random token ids of unequal lengths (one of a single token): what tracing and
    the parity check run on."""
    rng = np.random.default_rng(seed)
    hi = max(vocab_size, 3)

    def side() -> list[np.ndarray]:
        return [rng.integers(2, hi, n).astype(np.int64) for n in (9, 5, 1, 3)]

    return featurizer.arrays(side(), side() if pair else None)


def _session(ort, path: Path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _check_out(model_dir: Path, out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file; it names the export folder to write")
    m, o = model_dir.resolve(), out_dir.resolve()
    if o == m or m in o.parents or (out_dir / "model.safetensors").exists():
        raise ConfigError(f"--out {out_dir}: is, or lies in, a model folder; name a new folder for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / EXPORT_FILE).is_file():
        raise ConfigError(
            f"--out {out_dir}: holds files that are not a datadistill export; choose a new or empty folder"
        )
