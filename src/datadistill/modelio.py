"""Self-contained model folders: everything `predict` needs, nothing else.

config.json        architecture, hyper-parameters, features (tokenizer, n-grams), the command that made it
vocab.txt          one token per line ([PAD] = 0, [UNK] = 1)
labels.json        the label map
model.safetensors  the weights
metrics.json       dev/test metrics of the run that made it (informative; not needed to load)

`read_folder` reads the first three without torch (an ONNX export folder shares them, see export.py);
`load_folder` adds the network.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import from_dict, to_dict
from .data.labels import LabelMap
from .errors import ModelFolderError
from .text.features import FeatureConfig, Featurizer
from .text.vocab import Vocab

if TYPE_CHECKING:
    from .students.base import Student

SHARED = ("config.json", "vocab.txt", "labels.json")  # what a model folder and an export folder both hold
REQUIRED = SHARED + ("model.safetensors",)
__all__ = ["ModelFolderError", "save_model", "load_folder", "read_folder", "REQUIRED", "SHARED"]


def save_model(
    folder: str | Path,
    model: Student,
    featurizer: Featurizer,
    label_map: LabelMap,
    params: dict,
    metrics: dict | None = None,
    command: str | None = None,
) -> Path:
    """Write the folder (each file atomically, so a crash never leaves a half-written one)."""
    from safetensors.torch import save

    from .data.io import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "datadistill_version": __version__,
        "arch": model.arch,
        "model": params,
        "features": to_dict(featurizer.cfg),
        "dims": to_dict(model.dims),
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
    }
    with atomic_write(folder / "config.json") as f:
        f.write(json.dumps(config, ensure_ascii=False, indent=1) + "\n")
    with atomic_write(folder / "vocab.txt") as f:
        f.write("\n".join(featurizer.vocab.itos) + "\n")
    with atomic_write(folder / "labels.json") as f:
        f.write(json.dumps(label_map.to_dict(), ensure_ascii=False, indent=1) + "\n")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(folder / "model.safetensors", "wb") as f:
        f.write(save(state, metadata={"arch": model.arch}))
    if metrics is not None:
        with atomic_write(folder / "metrics.json") as f:
            f.write(json.dumps(metrics, ensure_ascii=False, indent=1) + "\n")
    return folder


# Settings added after the first model folders were written, at the values those folders were made with
LEGACY_FEATURES = {"ngram_hash": "poly"}
LEGACY_MODEL = {"match": False, "similarity": False}  # for the students whose hyper-parameters have the key


def read_folder(
    folder: str | Path, weights: str = "model.safetensors", kind: str = "a model folder"
) -> tuple[dict, Featurizer, LabelMap]:
    """(config, featurizer, label map) of a folder holding SHARED plus `weights`, checked; no torch."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a model folder" if folder.exists() else "model folder does not exist"
        raise ModelFolderError(f"{folder}: {what}")
    if (folder / "teacher.json").is_file() and not (folder / "vocab.txt").is_file():
        raise ModelFolderError(f"{folder}: is a teacher folder; score with it through 'datadistill teacher predict'")
    required = SHARED + (weights,)
    for name in required:
        if not (folder / name).is_file():
            raise ModelFolderError(f"{folder / name}: missing ({kind} holds {', '.join(required)})")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        _arch, _params, dims = config["arch"], config["model"], config["dims"]
        vocab_size, num_labels = int(dims["vocab_size"]), int(dims["num_labels"])
        fcfg = from_dict(FeatureConfig, {**LEGACY_FEATURES, **config["features"]}, "features")
    except Exception as e:  # noqa: BLE001 - any problem here means the file is damaged
        raise ModelFolderError(f"{folder / 'config.json'}: cannot read model config ({e})") from None
    try:
        vocab = Vocab.load(folder / "vocab.txt")
    except Exception as e:  # noqa: BLE001
        raise ModelFolderError(f"{folder / 'vocab.txt'}: cannot read vocabulary ({e})") from None
    try:
        label_map = LabelMap.load(folder / "labels.json")
    except Exception as e:  # noqa: BLE001
        raise ModelFolderError(f"{folder / 'labels.json'}: cannot read label map ({e})") from None
    if len(vocab) != vocab_size or len(label_map) != num_labels:
        raise ModelFolderError(
            f"{folder}: vocab.txt has {len(vocab)} tokens and labels.json {len(label_map)} labels, "
            f"but config.json expects {vocab_size} and {num_labels}"
        )
    try:
        featurizer = Featurizer(fcfg, vocab)
    except Exception as e:  # noqa: BLE001 - features an edited config left incomplete
        raise ModelFolderError(f"{folder / 'config.json'}: cannot read model config ({e})") from None
    return config, featurizer, label_map


def _with_legacy_model(arch: str, params: dict) -> dict:
    from .students import STUDENTS

    if arch not in STUDENTS:
        return params  # build_student names the unknown architecture
    names = {f.name for f in dataclasses.fields(STUDENTS.get(arch)[1])}
    return {**{k: v for k, v in LEGACY_MODEL.items() if k in names}, **params}


def load_folder(folder: str | Path) -> tuple[Student, Featurizer, LabelMap, dict]:
    """(network in eval mode, featurizer, label map, config) from a model folder."""
    from safetensors.torch import load_file

    from .students import build_student
    from .students.base import Dims

    folder = Path(folder)
    config, featurizer, label_map = read_folder(folder)
    try:
        dims = Dims(**config["dims"])
    except Exception as e:  # noqa: BLE001
        raise ModelFolderError(f"{folder / 'config.json'}: cannot read model config ({e})") from None
    try:
        model = build_student(config["arch"], _with_legacy_model(config["arch"], config["model"]), dims)
    except Exception as e:  # noqa: BLE001 - an edited arch or hyper-parameter
        raise ModelFolderError(f"{folder / 'config.json'}: cannot build the model it describes ({e})") from None
    try:
        state = load_file(str(folder / "model.safetensors"))
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001
        raise ModelFolderError(f"{folder / 'model.safetensors'}: cannot load weights ({e})") from None
    model.eval()
    return model, featurizer, label_map, config
