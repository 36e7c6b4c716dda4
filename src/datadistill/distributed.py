"""Many processes and machines through `torch.distributed`, launched by `torchrun`.

`torchrun --nproc_per_node N -m datadistill COMMAND ...` starts N copies of a command with RANK,
WORLD_SIZE and LOCAL_RANK set (and a c10d rendezvous across nodes with --nnodes/--rdzv-endpoint).
`world()` reads them once: CPU ranks talk over gloo, GPU ranks over nccl, each GPU rank on
cuda:LOCAL_RANK. Outside torchrun it is a world of one and nothing is initialised, so every command
runs unchanged in one process.

Why torchrun and not Accelerate: the commands need only a process group, a barrier, object
broadcast and DDP, all in torch itself; torchrun is what SLURM and Kubernetes (PyTorchJob) recipes
already launch, and it names the failing rank when one dies.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

from .log import logger

log = logger.getChild("distributed")

TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("DATADISTILL_DIST_TIMEOUT_MIN", "30")))


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one writer of shared files (merged outputs, step records, reports, model folders)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (e.g. a decision every rank must take alike)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def device(self, requested: str = "auto") -> str:
        """The device a rank uses: cuda:LOCAL_RANK for GPU ranks, else what was asked."""
        if self.distributed and self.backend == "nccl" and requested in ("auto", "cuda"):
            return f"cuda:{self.local_rank}"
        return requested


_WORLD: World | None = None


def world() -> World:
    """This process's place in the job; initialises the process group on first use under torchrun."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        _WORLD = World()
        return _WORLD
    import torch
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    _WORLD = World(rank, size, local, backend)
    log.debug(f"rank {rank} of {size} (local rank {local}, {backend})")
    return _WORLD


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    global _WORLD
    if _WORLD is not None and _WORLD.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _WORLD = None
