"""torch.distributed setup for ``torchrun`` (one process per GPU, or gloo processes on the CPU).
The same code runs as a single process when torchrun's environment variables are absent.

Every collective of the harness goes through the helpers here, which put tensors on the device the
process group's backend accepts (:func:`collective_device`): nccl takes CUDA tensors only, gloo CPU
tensors. Control decisions that every rank must agree on (skip an empty batch) travel through a CPU
(gloo) group, so they never wait on the GPU's queue."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""  # "nccl", "gloo" ... ("" in a single process)
    cpu_group: object = None  # a gloo group for host-side agreement (None: the default group is gloo)
    owns_group: bool = False  # init_world started the process group, so shutdown() ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def collective_device(backend: str, local_rank: int = 0) -> torch.device:
    """The device a collective's tensors must be on for ``backend``: CUDA ``local_rank`` for nccl (it
    rejects CPU tensors), the CPU for gloo, mpi and ucc (and for mixed "cpu:gloo,cuda:nccl" groups)."""
    name = str(backend).lower()
    cpu_capable = any(b in name for b in ("gloo", "mpi", "ucc")) or "cpu:" in name
    if "nccl" in name and not cpu_capable:
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def local_world_size() -> int:
    """Processes on this node (torchrun's LOCAL_WORLD_SIZE; 1 outside torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def init_world(device: str = "auto") -> World:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK, pick the device, and start the process group
    (nccl on GPU, gloo on the CPU, plus a gloo group for host-side agreement next to nccl)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible "
                               f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); start "
                               "torchrun with --nproc_per_node at most the number of GPUs, or device=cpu")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world_size <= 1:
        return World(rank, world_size, local_rank, dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None)
    backend = str(dist.get_backend())
    cpu_group = dist.new_group(backend="gloo") if collective_device(backend).type != "cpu" else None
    return World(rank, world_size, local_rank, dev, backend, cpu_group, owns)


def _group_device(world: World) -> torch.device:
    return collective_device(world.backend, world.local_rank)


def all_reduce_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of ``values`` over ranks, on ``values``' device (moved to the group's device for the call)."""
    if not world.distributed:
        return values
    out = values.detach().to(_group_device(world), copy=True)
    dist.all_reduce(out)
    return out.to(values.device)


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when ``flag`` is true on any rank; a host-side (CPU group) exchange, no GPU sync."""
    if not world.distributed:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=world.cpu_group)
    return bool(t.numpy()[0])


def all_gather_objects(obj, world: World) -> list:
    """Every rank's ``obj`` (picklable), in rank order; through the CPU group, so CPU tensors stay put."""
    if not world.distributed:
        return [obj]
    out = [None] * world.world_size
    dist.all_gather_object(out, obj, group=world.cpu_group)
    return out


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier(group=world.cpu_group)


def shutdown(world: World) -> None:
    """End the process group if :func:`init_world` started it (torch warns at exit otherwise)."""
    if world.distributed and world.owns_group and dist.is_initialized():
        dist.destroy_process_group()
