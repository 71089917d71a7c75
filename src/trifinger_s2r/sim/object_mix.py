"""Several objects in one batch of envs: one native MuJoCo batch per object variant behind the one backend seam.

MuJoCo's batch can give each env its own sizes, masses and frictions, but not its own geom type (a sphere among
boxes), so each variant gets its own compiled scene and `mujoco.batch.Batch`; env i holds variant i mod K for the
whole run. Training across objects (randomization.objects) and the robustness study's single objects use it.
"""

from __future__ import annotations

from dataclasses import fields

import torch

from trifinger_s2r.sim.backend import PhysicsParams, SimState
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.timing import Timing


def env_object_indices(num_envs: int, num_variants: int) -> torch.Tensor:
    """(N,) the variant each env holds: env i holds variant i mod K (every variant in (nearly) equal share)."""
    return torch.arange(num_envs) % num_variants


class ObjectMixBackend:
    """N envs over K object variants (robot.objects.VARIANTS); implements `PhysicsBackend`."""

    def __init__(self, num_envs: int, objects: tuple[str, ...], timing: Timing | None = None,
                 collision: str = "primitive", num_threads: int = 0, contact: ContactModel | None = None) -> None:
        from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend

        if not objects:
            raise ValueError("ObjectMixBackend needs at least one object variant")
        if num_envs < len(objects):
            raise ValueError(f"num_envs ({num_envs}) must be at least the number of objects ({len(objects)})")
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.objects = tuple(objects)
        self.env_object = env_object_indices(num_envs, len(objects))
        self._members = [(self.env_object == k).nonzero().flatten() for k in range(len(objects))]
        self._local = torch.empty(num_envs, dtype=torch.long)
        for members in self._members:
            self._local[members] = torch.arange(len(members))
        self.parts = [MujocoCpuBackend(len(m), timing, collision, num_threads, obj=name, contact=contact)
                      for name, m in zip(self.objects, self._members)]

    def _split(self, env_ids: torch.Tensor):
        """(part, local ids, row mask) for every part that holds some of env_ids."""
        ids = env_ids.cpu().long()
        for k, part in enumerate(self.parts):
            rows = self.env_object[ids] == k
            if rows.any():
                yield part, self._local[ids[rows]], rows

    def reset(self, env_ids: torch.Tensor, joint_pos_rad: torch.Tensor, cube_pos_m: torch.Tensor,
              cube_quat_xyzw: torch.Tensor) -> None:
        for part, local, rows in self._split(env_ids):
            part.reset(local, joint_pos_rad[rows], cube_pos_m[rows], cube_quat_xyzw[rows])

    def step(self, torque_nm: torch.Tensor) -> None:
        torque = torque_nm.detach().cpu()
        for part, members in zip(self.parts, self._members):
            part.step(torque[members])

    def state(self) -> SimState:
        states = [part.state() for part in self.parts]
        merged = {}
        for f in fields(SimState):
            first = getattr(states[0], f.name)
            out = torch.empty((self.num_envs, *first.shape[1:]), dtype=first.dtype)
            for members, state in zip(self._members, states):
                out[members] = getattr(state, f.name)
            merged[f.name] = out
        return SimState(**merged)

    def set_params(self, env_ids: torch.Tensor, params: PhysicsParams) -> None:
        for part, local, rows in self._split(env_ids):
            part.set_params(local, params.select(rows.nonzero().flatten()))

    def nonfinite_envs(self) -> torch.Tensor:
        out = torch.zeros(self.num_envs, dtype=torch.bool)
        for part, members in zip(self.parts, self._members):
            out[members] = part.nonfinite_envs()
        return out
