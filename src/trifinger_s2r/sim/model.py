"""Loading the committed scene model and looking up the ids the backends need."""

from __future__ import annotations

import mujoco
import numpy as np

from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.build_model import ASSET_DIR, SCENE_FILES
from trifinger_s2r.robot.objects import variant
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.timing import Timing


def load_model(collision: str = "primitive", timing: Timing | None = None, obj: str = "cube",
               contact: ContactModel | None = None) -> mujoco.MjModel:
    """The TriFinger scene with the physics step of `timing`; MuJoCo's silent auto-reset is off so that
    a diverged simulation stays visible (and is counted and reset by the env).

    obj: the object in place of the cube (robot.objects.VARIANTS); 'cube' loads the committed scene unchanged.
    contact: the friction cone and impratio (default: MuJoCo's soft pyramidal cone, as committed)."""
    if collision not in SCENE_FILES:
        raise ValueError(f"unknown collision variant {collision!r}; valid: {list(SCENE_FILES)}")
    if obj == "cube":
        model = mujoco.MjModel.from_xml_path(str(ASSET_DIR / SCENE_FILES[collision]))
    else:
        model = object_scene(collision, obj).compile()
    model.opt.timestep = (timing or Timing()).physics_dt_s
    (contact or ContactModel()).apply(model)
    model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
    return model


def object_scene(collision: str, obj: str) -> mujoco.MjSpec:
    """The committed scene with another object in place of the cube: the geom keeps the name 'cube' (so the
    contact pairs, the contact sensors and SceneIndex find it), the body and its free joint keep theirs; shape,
    size and mass are the variant's, and the home keyframe puts it at its resting height."""
    v = variant(obj)
    spec = mujoco.MjSpec.from_file(str(ASSET_DIR / SCENE_FILES[collision]))
    geom = spec.geom("cube")
    geom.type = mujoco.mjtGeom.mjGEOM_SPHERE if v.shape == "sphere" else mujoco.mjtGeom.mjGEOM_BOX
    geom.size = list(v.half_size_m)
    geom.mass = v.mass_kg
    spec.body("cube").pos = [0.0, 0.0, v.resting_height_m]
    home = spec.key("home")
    qpos = list(home.qpos)
    qpos[-5] = v.resting_height_m  # cube z in (x, y, z, qw, qx, qy, qz)
    home.qpos = qpos
    return spec


def _ids(model: mujoco.MjModel, objtype: mujoco.mjtObj, names: list[str]) -> np.ndarray:
    ids = [mujoco.mj_name2id(model, objtype, n) for n in names]
    missing = [n for n, i in zip(names, ids) if i < 0]
    if missing:
        raise ValueError(f"model lacks {objtype.name} {missing}")
    return np.asarray(ids, dtype=np.int64)


class SceneIndex:
    """Ids and addresses of the scene's named parts."""

    def __init__(self, model: mujoco.MjModel) -> None:
        joints = _ids(model, mujoco.mjtObj.mjOBJ_JOINT, list(tp.JOINT_NAMES))
        if not np.array_equal(model.jnt_qposadr[joints], np.arange(tp.NUM_JOINTS)):
            raise ValueError("robot joints must come first in qpos, in the robot's DOF order")
        cube_joint = _ids(model, mujoco.mjtObj.mjOBJ_JOINT, ["cube_joint"])[0]
        self.cube_qpos = int(model.jnt_qposadr[cube_joint])
        self.cube_dof = int(model.jnt_dofadr[cube_joint])
        self.cube_body = int(_ids(model, mujoco.mjtObj.mjOBJ_BODY, ["cube"])[0])
        self.cube_geom = int(_ids(model, mujoco.mjtObj.mjOBJ_GEOM, ["cube"])[0])
        self.fingertip_sites = _ids(model, mujoco.mjtObj.mjOBJ_SITE, [f"fingertip_{f}" for f in tp.FINGER_NAMES])
        self.fingertip_geoms = _ids(model, mujoco.mjtObj.mjOBJ_GEOM, [f"finger_tip_{f}" for f in tp.FINGER_NAMES])
        self.lower_link_bodies = _ids(model, mujoco.mjtObj.mjOBJ_BODY, list(tp.LOWER_LINK_NAMES))
        self.finger_root_bodies = model.body_rootid[self.lower_link_bodies]
        sensors = _ids(model, mujoco.mjtObj.mjOBJ_SENSOR, [f"fingertip_contact_{f}" for f in tp.FINGER_NAMES])
        self.contact_sensor_adr = np.concatenate(
            [np.arange(model.sensor_adr[s], model.sensor_adr[s] + model.sensor_dim[s]) for s in sensors]
        )
        self.home_key = int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home"))
        pair_names = [model.pair(i).name for i in range(model.npair)]
        self.finger_cube_pairs = self._pairs(pair_names, lambda a, b: a.startswith("finger_") and b == "cube")
        self.cube_table_pairs = self._pairs(pair_names, lambda a, b: a == "cube" and b == "table")
        self.finger_table_pairs = self._pairs(pair_names, lambda a, b: a.startswith("finger_") and b == "table")

    @staticmethod
    def _pairs(names: list[str], keep) -> np.ndarray:
        return np.asarray([i for i, n in enumerate(names) if keep(*n.split("__"))], dtype=np.int64)
