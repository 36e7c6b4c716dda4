"""Predict from an export folder (export.py) with onnxruntime and the project's tokenization; no torch.

from datadistill.onnx_predict import OnnxPredictor
model = OnnxPredictor("work/export/cnn")
model.predict(["房间很干净，服务也好"]), model.predict_proba(["房间很干净，服务也好"])
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import ModelFolderError
from .extras import require
from .modelio import read_folder
from .predict import BasePredictor

EXPORT_FILE, ONNX_FILE = "export.json", "model.onnx"


class OnnxPredictor(BasePredictor):
    """An export folder run with onnxruntime: the same texts in, the same probabilities out as the
    student it was exported from (within 1e-5; int8 exports are close, not equal)."""

    backend = "onnx"

    def __init__(self, folder: str | Path, batch_size: int = 256, threads: int | None = None) -> None:
        """threads: onnxruntime's intra-op threads (None: its default, one per physical core)."""
        ort = require("onnxruntime", "predicting with an exported model")
        self.folder = Path(folder)
        self.config, self.featurizer, self.label_map = read_folder(self.folder, ONNX_FILE, "an export folder")
        try:
            self.export = json.loads((self.folder / EXPORT_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.export = {}
        except Exception as e:  # noqa: BLE001
            raise ModelFolderError(f"{self.folder / EXPORT_FILE}: cannot read export info ({e})") from None
        self.batch_size = batch_size
        self.pair = bool(self.config["dims"].get("pair", False))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.folder / ONNX_FILE), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - a damaged or foreign file
            raise ModelFolderError(f"{self.folder / ONNX_FILE}: cannot load the ONNX model ({e})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        if ("ids_b" in self.inputs) != self.pair:
            raise ModelFolderError(
                f"{self.folder / ONNX_FILE}: its graph reads {'pairs' if 'ids_b' in self.inputs else 'single texts'} "
                f"but {self.folder / 'config.json'} describes a {'pair' if self.pair else 'single-text'} model; "
                f"export the folder again"
            )

    @property
    def labels(self) -> list[str]:
        return self.label_map.labels

    def _forward(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], {k: arrays[k] for k in self.inputs})[0]
