"""`trifinger-s2r bench friction`: how hard an object must be pushed to slide on the table, in our MuJoCo model and on
the official PyBullet TriFinger.

The object rests at the arena's centre with the fingers held at home (their joints reset every step, so nothing
touches it), then a constant horizontal force at its centre acts for 1 s. For each force of a sweep, the distance it
moved; the breakaway force is the smallest force that moved it more than 5 mm, and the effective friction
coefficient that force over the object's weight. Each simulator uses its nominal contact model (MuJoCo: our scene's
pairs, with MuJoCo's default soft pyramidal cone unless `--friction-cone`/`--impratio` say otherwise; PyBullet:
trifinger_simulation's materials with the default calibration).
"""

from __future__ import annotations

import argparse

from trifinger_s2r.clitools import print_result
from trifinger_s2r.sim.contact import FRICTION_CONES, ContactModel

PUSH_S = 1.0
SETTLE_S = 0.5
MOVED_M = 0.005
"""An object that moved more than this in PUSH_S under the force slides."""
GRAVITY_MPS2 = 9.81


def mujoco_displacements_m(obj: str, forces_n: list[float], contact=None) -> tuple[float, list[float]]:
    """(mass, x displacement after PUSH_S under each force) in our MuJoCo scene (contact: a sim.contact.ContactModel;
    None: the scene's default)."""
    from trifinger_s2r.sim.model import SceneIndex, load_model

    model = load_model("primitive", None, obj, contact)
    ix = SceneIndex(model)
    return float(model.body_mass[ix.cube_body]), [_mujoco_trial(model, ix, force) for force in forces_n]


def _mujoco_trial(model, ix, force_n: float) -> float:
    import mujoco

    from trifinger_s2r.robot import trifinger_pro as tp

    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, ix.home_key)
    home = tp.per_finger(tp.HOME_POSE_RAD)

    def step(f: float) -> None:
        data.qpos[: tp.NUM_JOINTS], data.qvel[: tp.NUM_JOINTS] = home, 0.0
        data.xfrc_applied[ix.cube_body, :3] = (f, 0.0, 0.0)
        mujoco.mj_step(model, data)

    for _ in range(round(SETTLE_S / model.opt.timestep)):
        step(0.0)
    start = float(data.qpos[ix.cube_qpos])
    for _ in range(round(PUSH_S / model.opt.timestep)):
        step(force_n)
    return float(data.qpos[ix.cube_qpos]) - start


def pybullet_displacements_m(obj: str, forces_n: list[float]) -> tuple[float, list[float]]:
    """(mass, x displacement after PUSH_S under each force) on the PyBullet TriFinger (1 kHz)."""
    from trifinger_s2r.study.pybullet_objects import ObjectPyBulletRobot

    robot = ObjectPyBulletRobot(obj=obj)  # one robot: each start_episode closes the simulation it made before
    trials = [_pybullet_trial(robot, force) for force in forces_n]
    robot.close()
    return trials[0][0], [moved for _, moved in trials]


def _pybullet_trial(robot, force_n: float) -> tuple[float, float]:
    """(mass, displacement) of one push in a fresh simulation. Its references to the simulation die on return: a
    platform object that outlives start_episode would, when collected, disconnect the next one's PyBullet client
    (PyBullet reuses client ids)."""
    import numpy as np
    import pybullet

    from trifinger_s2r.robot import trifinger_pro as tp
    from trifinger_s2r.robot.objects import variant
    from trifinger_s2r.timing import ROBOT_RATE_HZ

    robot.start_episode(np.array([0.0, 0.0, variant(robot.obj).resting_height_m]), np.array([0.0, 0.0, 0.0, 1.0]))
    client, body, finger = robot.pybullet_client_id, robot._platform.cube._object_id, robot._platform.simfinger
    home = tp.per_finger(tp.HOME_POSE_RAD)

    def step(f: float) -> None:
        for joint, q in zip(finger.pybullet_joint_indices, home):
            pybullet.resetJointState(finger.finger_id, joint, q, 0.0, physicsClientId=client)
        position, _ = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)
        pybullet.applyExternalForce(body, -1, (f, 0.0, 0.0), position, pybullet.WORLD_FRAME, physicsClientId=client)
        pybullet.stepSimulation(physicsClientId=client)

    for _ in range(round(SETTLE_S * ROBOT_RATE_HZ)):
        step(0.0)
    start = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)[0][0]
    for _ in range(round(PUSH_S * ROBOT_RATE_HZ)):
        step(force_n)
    moved = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)[0][0] - start
    return float(pybullet.getDynamicsInfo(body, -1, physicsClientId=client)[0]), moved


def breakaway(mass_kg: float, forces_n: list[float], moved_m: list[float]) -> dict:
    """The sweep's summary: the smallest force that slid the object, and that force over its weight."""
    sliding = [f for f, m in zip(forces_n, moved_m) if abs(m) > MOVED_M]
    force = min(sliding) if sliding else None
    return {"mass_kg": mass_kg, "breakaway_force_n": force,
            "effective_friction": None if force is None else force / (mass_kg * GRAVITY_MPS2),
            "moved_mm": {f"{f:g}": round(1000 * m, 2) for f, m in zip(forces_n, moved_m)}}


def run(objects: list[str], weight_fractions: list[float], platforms: list[str], contact=None) -> dict:
    """Every object on every platform, forces at the given fractions of the object's weight (contact: MuJoCo's
    sim.contact.ContactModel; None: the scene's default)."""
    from trifinger_s2r.robot.objects import variant

    contact = contact or ContactModel()
    measure = {"mujoco": lambda obj, forces: mujoco_displacements_m(obj, forces, contact),
               "pybullet": pybullet_displacements_m}
    results = {}
    for obj in objects:
        weight_n = variant(obj).mass_kg * GRAVITY_MPS2
        forces = [round(fraction * weight_n, 4) for fraction in weight_fractions]
        results[obj] = {}
        for platform in platforms:
            mass_kg, moved_m = measure[platform](obj, forces)
            results[obj][platform] = breakaway(mass_kg, forces, moved_m)
        results[obj]["forces_n"] = forces
    return {"push_s": PUSH_S, "moved_threshold_m": MOVED_M, "weight_fractions": weight_fractions,
            "mujoco_contact": {"friction_cone": contact.cone, "impratio": contact.impratio}, "results": results}


def _cmd(args: argparse.Namespace) -> None:
    from trifinger_s2r.robot.objects import VARIANTS

    objects = [o for o in args.objects.split(",") if o]
    unknown = [o for o in objects if o not in VARIANTS]
    if unknown:
        raise SystemExit(f"bench friction: unknown object(s) {unknown}; valid: {list(VARIANTS)}")
    try:
        contact = ContactModel(args.friction_cone, args.impratio)
    except ValueError as err:
        raise SystemExit(f"bench friction: {err}") from None
    platforms = ["mujoco"] if args.no_pybullet else ["mujoco", "pybullet"]
    print_result(run(objects, [0.1 * k for k in range(1, 16)], platforms, contact), args.json)


def add_friction_parser(bench_sub: argparse._SubParsersAction) -> None:
    friction = bench_sub.add_parser("friction", help="the horizontal force that slides a resting object on the table, "
                                                     "in our MuJoCo model and on the PyBullet TriFinger")
    friction.add_argument("--objects", default="cube,cube_x2", help="comma-separated object variants")
    friction.add_argument("--no-pybullet", action="store_true", help="our MuJoCo model only")
    friction.add_argument("--friction-cone", choices=FRICTION_CONES, default="pyramidal",
                          help="MuJoCo's friction cone (default pyramidal)")
    friction.add_argument("--impratio", type=float, default=1.0, help="MuJoCo's frictional to normal impedance "
                                                                      "ratio (>= 1; default 1)")
    friction.add_argument("--json", action="store_true", help="print one JSON object")
    friction.set_defaults(func=_cmd)
