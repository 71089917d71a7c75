"""Multi-process training under `torchrun`: NCCL on GPUs, gloo on CPU.

rsl_rl 5.5's runner reads torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK) but insists on `cuda:{LOCAL_RANK}`
and NCCL; this subclass keeps its bookkeeping and picks the process group backend from the device, so the same
command scales from two CPU processes (tested in CI) to several GPUs or nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from rsl_rl.runners import OnPolicyRunner


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in a torchrun launch (world_size 1: a plain single-process run)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_group_from_env() -> ProcessGroup:
    """Read torchrun's WORLD_SIZE, RANK and LOCAL_RANK (absent: a single process)."""
    group = ProcessGroup(
        world_size=int(os.getenv("WORLD_SIZE", "1")), rank=int(os.getenv("RANK", "0")),
        local_rank=int(os.getenv("LOCAL_RANK", "0")),
    )
    if not 0 <= group.rank < group.world_size or not 0 <= group.local_rank < group.world_size:
        raise ValueError(f"inconsistent torchrun environment: {group}")
    return group


def device_for(requested: str, group: ProcessGroup) -> str:
    """Each process of a GPU launch drives its own GPU (cuda:LOCAL_RANK); CPU processes stay on the CPU."""
    if group.is_distributed and requested.startswith("cuda"):
        return f"cuda:{group.local_rank}"
    return requested


class DistributedRunner(OnPolicyRunner):
    """OnPolicyRunner whose process group uses gloo on CPU and NCCL on CUDA, and whose checkpoints keep the env's
    training state (the goal curriculum, the env-step count that schedules reward terms)."""

    def save(self, path: str, infos: dict | None = None) -> None:
        super().save(path, {**(infos or {}), "env": self.env.training_state()})

    def load(self, path: str, load_cfg: dict | None = None, strict: bool = True, map_location: str | None = None):
        infos = super().load(path, load_cfg, strict, map_location)
        if load_cfg is None and infos and "env" in infos:  # a resume, not an init_from
            self.env.load_training_state(infos["env"])
        return infos

    def _configure_multi_gpu(self) -> None:
        group = process_group_from_env()
        self.gpu_world_size = group.world_size
        self.is_distributed = group.is_distributed
        self.gpu_local_rank, self.gpu_global_rank = group.local_rank, group.rank
        if not self.is_distributed:
            self.cfg["multi_gpu"] = None
            return
        self.cfg["multi_gpu"] = {"global_rank": group.rank, "local_rank": group.local_rank,
                                 "world_size": group.world_size}
        on_gpu = str(self.device).startswith("cuda")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if on_gpu else "gloo", rank=group.rank,
                                    world_size=group.world_size)
        if on_gpu:
            torch.cuda.set_device(group.local_rank)


def any_rank(flag: bool, group: ProcessGroup, device: str) -> bool:
    """True on every process when flag is true on any (a collective: every rank must call it)."""
    if not group.is_distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def parameters_agree(module: torch.nn.Module, group: ProcessGroup) -> bool:
    """Whether every process holds the same weights (a collective; compares a checksum of all parameters)."""
    if not group.is_distributed:
        return True
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
    gathered = [torch.zeros_like(checksum) for _ in range(group.world_size)]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def end_process_group(group: ProcessGroup) -> None:
    """Wait for every process, then tear the group down (left to interpreter exit, gloo's threads abort it)."""
    if group.is_distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
