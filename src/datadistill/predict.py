"""Load a model folder and predict: `Predictor.predict(texts)`, `predict_proba(texts)`, stdin -> stdout.

`BasePredictor` holds what every backend shares (tokenization, length batching, labels, the stdin
loop) and imports no torch; `Predictor` runs a student folder with torch, `onnx_predict.OnnxPredictor`
an export folder with onnxruntime. `load_predictor` picks the backend from the folder's files.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import IO, Iterable

import numpy as np

from .batching import in_length_order, softmax
from .errors import DataError, ConfigError
from .text.features import Featurizer

BACKENDS = ("torch", "onnx")


class BasePredictor(abc.ABC):
    """Texts in; labels or probabilities [N, C] (rows sum to one) out. Subclasses set `featurizer`,
    `labels`, `pair` and `batch_size` and implement `_forward` (one padded batch -> logits)."""

    backend = "base"
    featurizer: Featurizer
    labels: list[str]
    pair: bool
    batch_size: int

    @abc.abstractmethod
    def _forward(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Logits [B, C] (float32) of one batch of the featurizer's arrays."""

    def logits(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        """Logits [N, C] in input order; batches are formed by length to waste little on padding."""
        if self.pair and texts_b is None:
            raise ValueError("this model reads text pairs: pass texts_b (or TAB-separated lines on stdin)")
        if not texts_a:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        enc_a = self.featurizer.encode_many(texts_a)
        enc_b = self.featurizer.encode_many(texts_b) if texts_b is not None else None

        def run(idx):
            return self._forward(
                self.featurizer.arrays([enc_a[i] for i in idx], [enc_b[i] for i in idx] if enc_b else None)
            )

        return in_length_order([len(e) for e in enc_a], self.batch_size, run)

    def predict_proba(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        return softmax(self.logits(texts_a, texts_b))

    def predict(self, texts_a: list[str], texts_b: list[str] | None = None) -> list[str]:
        return [self.labels[i] for i in self.logits(texts_a, texts_b).argmax(-1)]

    def stream(self, lines: Iterable[str], out: IO[str], batch_size: int = 1) -> int:
        """Write `label<TAB>p1 p2 ...` per input line, exactly one output line per input line: a blank
        (or whitespace-only) line is answered by a blank line, so answers stay aligned with their
        inputs. batch_size 1 answers each line as it arrives. Returns the number of lines answered."""
        n, buf = 0, []

        def flush() -> None:
            texts = [b for b in buf if b is not None]
            if self.pair:
                parts = [t.split("\t", 1) + [""] for t in texts]
                probs = iter(self.predict_proba([p[0] for p in parts], [p[1] for p in parts]) if texts else [])
            else:
                probs = iter(self.predict_proba(texts) if texts else [])
            lines = []
            for b in buf:
                if b is None:
                    lines.append("\n")
                else:
                    p = next(probs)
                    lines.append(f"{self.labels[int(p.argmax())]}\t{' '.join(f'{x:.6f}' for x in p)}\n")
            out.write("".join(lines))
            out.flush()
            buf.clear()

        for line in lines:
            line = line.rstrip("\r\n")
            n += 1
            if self.pair and line.strip() and line.count("\t") != 1:
                flush()  # the lines before it are answered
                raise DataError(
                    f"input line {n}: this model reads text pairs, one `text_a<TAB>text_b` per line; "
                    f"the line has {line.count(chr(9))} tabs"
                )
            buf.append(line if line.strip() else None)
            if len(buf) >= batch_size:
                flush()
        if buf:
            flush()
        return n


class Predictor(BasePredictor):
    """A student folder run with torch."""

    backend = "torch"

    def __init__(self, folder: str | Path, batch_size: int = 256, bf16: bool = False) -> None:
        """bf16=True runs matrix work (convolutions, LSTM, linear layers) in bfloat16 under autocast:
        about 4x faster convolutions on CPUs with AVX512-BF16/AMX, at the cost of ~3 significant digits."""
        from .modelio import load_folder

        self.folder = Path(folder)
        self.model, self.featurizer, self.label_map, self.config = load_folder(folder)
        self.batch_size = batch_size
        self.bf16 = bf16
        self.pair = bool(self.model.dims.pair)

    @property
    def labels(self) -> list[str]:
        return self.label_map.labels

    def _forward(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.model({k: torch.from_numpy(v) for k, v in arrays.items()}).float().numpy()


def check_pair_columns(pred: BasePredictor, path: str | Path, has_b: bool, where: str) -> None:
    """Refuse a table whose text columns do not fit the model: pairs need text_b, single texts none."""
    if pred.pair != has_b:
        raise DataError(
            f"{path}: the model in {where} reads text pairs; this file has no text_b column"
            if pred.pair
            else f"{path}: has a text_b column, but the model in {where} reads single texts"
        )


def detect_backend(folder: str | Path) -> str:
    """'onnx' for an export folder (it holds model.onnx), else 'torch' (a student folder; loading it
    explains whatever is missing)."""
    return "onnx" if (Path(folder) / "model.onnx").is_file() else "torch"


def load_predictor(folder: str | Path, backend: str | None = None, **kw) -> BasePredictor:
    """A predictor for a student folder (torch) or an export folder (onnx); backend None: from the folder's files.
    Keyword arguments go to the backend's class (batch_size; threads for onnx; bf16 for torch)."""
    backend = backend or detect_backend(folder)
    if backend == "torch":
        return Predictor(folder, **kw)
    if backend == "onnx":
        from .onnx_predict import OnnxPredictor

        return OnnxPredictor(folder, **kw)
    raise ConfigError(f"backend '{backend}': expected one of {', '.join(BACKENDS)}")
