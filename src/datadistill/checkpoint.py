"""Training state in one file, so a killed training run (teacher or student) continues where it was.

The training loop saves at each dev evaluation: weights, best weights, optimizer, schedule, the numpy
RNG at the start of the epoch (the epoch's batches are re-drawn from it and the finished ones skipped)
and torch's RNGs (dropout). A resumed run therefore takes exactly the steps of one never stopped.
The file is written to a temporary name and renamed, so a kill while saving leaves the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from .log import logger

log = logger.getChild("checkpoint")


def run_id(*parts) -> str:
    """What a checkpoint must match to be resumed: settings and data, as strings, bytes or arrays."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            part = part.tobytes()
        elif not isinstance(part, bytes):
            part = json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


class TrainingCheckpoint:
    """`save` after an evaluation, `load` once before training; `what` names the run in messages."""

    def __init__(self, path: str | Path, run_id: str, what: str = "training") -> None:
        self.path, self.run_id, self.what = Path(path), run_id, what

    def save(
        self, model, opt, sched, epoch_rng: str, state: dict, best_state: dict | None, device: torch.device
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(
            {
                "run": self.run_id,
                "state": json.dumps(state),
                "epoch_rng": epoch_rng,
                "model": model.state_dict(),
                "best": best_state,
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            },
            tmp,
        )
        os.replace(tmp, self.path)

    def load(
        self, model, opt, sched, rng: np.random.Generator, device: torch.device
    ) -> tuple[dict, dict | None] | None:
        """Restore everything in place; returns (state, best weights), or None to start from scratch."""
        if not self.path.exists():
            return None
        try:
            ck = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated file from a full disk: starting over beats failing
            log.warning(f"{self.path} cannot be read ({type(e).__name__}: {e}); starting over")
            return None
        if ck.get("run") != self.run_id:
            why = "settings, data or number of processes differ"
            log.warning(f"{self.path} belongs to another {self.what} run ({why}); starting over")
            return None
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = json.loads(ck["epoch_rng"])
        torch.set_rng_state(ck["torch_rng"])
        if ck["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
        return json.loads(ck["state"]), ck["best"]


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint and any half-written temporary beside it (once the model is saved)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)
