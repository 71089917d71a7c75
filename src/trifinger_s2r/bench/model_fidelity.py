"""Fidelity of the MuJoCo model: fingertip kinematics against the URDF (pinocchio), link volumes of the collision
variants (meshes, convex hulls, fitted capsules), and the variants' physics speed.

Run `python -m trifinger_s2r.bench.model_fidelity --speed --json`; the figures are in docs/model.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import mujoco
import numpy as np
import torch
from scipy.spatial import ConvexHull

from trifinger_s2r.bench.env_bench import EnvBenchConfig, machine_info, make_env
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.build_model import ASSET_DIR, COLLISION_VARIANTS, LINK_ROLES, urdf_path
from trifinger_s2r.sim.model import load_model
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend


def stl_triangles(path) -> np.ndarray:
    """(T, 3, 3) triangles of a binary STL file."""
    data = path.read_bytes()
    count = int.from_bytes(data[80:84], "little")
    records = np.frombuffer(data[84 : 84 + 50 * count], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    return records["v"].astype(np.float64)


def mesh_volume_m3(triangles: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh (divergence theorem)."""
    return abs(np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2])).sum()) / 6.0


def capsule_volume_m3(radius: float, half_length: float) -> float:
    return math.pi * radius**2 * (2 * half_length) + 4.0 / 3.0 * math.pi * radius**3


def fidelity() -> dict:
    model = load_model("primitive")
    result = {}
    for mesh, role in LINK_ROLES.items():
        triangles = stl_triangles(ASSET_DIR / "meshes" / f"{mesh}.stl")
        volume = mesh_volume_m3(triangles)
        hull = ConvexHull(triangles.reshape(-1, 3)).volume
        geom = model.geom(f"finger_{role}_0")
        entry = {"mesh_volume_cm3": round(volume * 1e6, 2), "hull_over_mesh": round(hull / volume, 3)}
        if geom.type[0] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            entry["capsule_over_mesh"] = round(capsule_volume_m3(geom.size[0], geom.size[1]) / volume, 3)
            entry["capsule_radius_m"] = round(float(geom.size[0]), 4)
        result[role] = entry
    return result


def fingertip_error_m(num_configs: int = 200, seed: int = 1) -> float:
    """Largest distance between our fingertip sites and pinocchio's URDF fingertip frames over random joint angles."""
    from robot_properties_fingers.pinocchio_utils import Kinematics

    kinematics = Kinematics(urdf_path(), [f"finger_tip_link_{f}" for f in tp.FINGER_NAMES])
    rng = np.random.default_rng(seed)
    q = rng.uniform(tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD), tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD), (num_configs, 9))
    backend = MujocoCpuBackend(num_configs, num_threads=1)
    away = torch.tensor([[0.5, 0.5, 0.0325]]).expand(num_configs, 3)
    backend.reset(torch.arange(num_configs), torch.from_numpy(q), away, torch.tensor([[0, 0, 0, 1.0]]).expand(num_configs, 4))
    tips = backend.batch.bind("site_xpos")[:, backend.index.fingertip_sites]
    return float(max(np.abs(tips[i] - np.stack(kinematics.forward_kinematics(q[i]))).max() for i in range(num_configs)))


def speed(num_envs: int = 512, steps_per_round: int = 25, rounds: int = 6) -> dict:
    """Raw physics policy steps/s of each variant, stepping its own randomised env batch with a policy that
    drives the fingers into the cube (PD towards the cube centre); the variants alternate in rounds."""
    envs = {v: make_env(EnvBenchConfig(num_envs=num_envs, collision=v, num_threads=0)) for v in COLLISION_VARIANTS}
    seconds = dict.fromkeys(envs, 0.0)
    contacts = {v: [] for v in envs}
    for _ in range(rounds):
        for variant, env in envs.items():
            batch, ctrl = env.backend.batch, env.backend.batch.bind("ctrl")
            ncon = batch.bind("ncon")
            start = time.perf_counter()
            for _ in range(steps_per_round):
                ctrl[:] = _press_on_cube(env)
                batch.step(nstep=env.timing.substeps, stage=mujoco.mjtStage.mjSTAGE_VEL)
            seconds[variant] += time.perf_counter() - start
            contacts[variant].append(float(np.mean(ncon)))
    steps = num_envs * steps_per_round * rounds
    return {
        v: {"raw_physics_policy_steps_per_s": round(steps / seconds[v], 1), "mean_contacts": round(np.mean(contacts[v]), 1)}
        for v in envs
    } | {"num_envs": num_envs, **machine_info()}


def _press_on_cube(env) -> np.ndarray:
    """Joint torques J^T k (cube - tip) that push each fingertip into the cube, within the torque limit."""
    batch = env.backend.batch
    ix = env.backend.index
    tips = batch.bind("site_xpos")[:, ix.fingertip_sites]
    cube = batch.bind("qpos")[:, ix.cube_qpos : ix.cube_qpos + 3]
    torque = np.zeros((env.num_envs, 9))
    for finger in range(3):
        jacp, _ = batch.jac(int(ix.lower_link_bodies[finger]), tips[:, finger])
        force = 20.0 * (cube - tips[:, finger])
        torque += np.einsum("nij,ni->nj", jacp[:, :, :9], force)
    return np.clip(torque, -env.task.torque_limit_nm, env.task.torque_limit_nm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--speed", action="store_true", help="also time raw physics of both variants")
    parser.add_argument("--num-envs", type=int, default=512)
    args = parser.parse_args()
    out = {"fingertip_max_error_m": fingertip_error_m(), "volume": fidelity()}
    if args.speed:
        out["speed"] = speed(args.num_envs)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
