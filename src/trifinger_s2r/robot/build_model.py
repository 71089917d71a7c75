"""Regenerate the MuJoCo model of TriFinger Pro + cube + arena from the official URDF.

Run `python -m trifinger_s2r.robot.build_model` (needs `robot-properties-fingers`). It writes
`assets/trifinger_pro_scene.xml` and copies the collision meshes beside it; both are committed, so the
package needs no URDF at run time.

Modelling choices (measured figures in docs/benchmarks.md and docs/model.md):
- Kinematics and inertias come from the URDF unchanged (MuJoCo's URDF import fuses the fixed
  `finger_tip_link_*` into the lower links, so fingertip frames are re-added as sites).
- Collision geometry is selectable: `mesh` uses MuJoCo's convex hulls of the URDF meshes; `primitive`
  replaces the link hulls (40-70% fatter than the links) by capsules MuJoCo fits to the same meshes and keeps
  the fingertip's hull, which is 0.92 of the tip's volume and carries almost every cube contact. All contacts are explicit `<pair>`s (no broad phase),
  which also lets us set each pair's friction the way PhysX combines materials (the average).
- Each motor is a `general` actuator whose force is clip(lag(clip(u)) - kd*qdot): ctrlrange is the first clip,
  an exact first-order filter models action latency (time constant 0 by default), the affine velocity bias is
  the robot's safety damping and forcerange the second clip. MuJoCo evaluates it at every physics step, as the
  robot does at 1 kHz, and the damping is integrated implicitly.
- The arena wall is a ring of boxes (the wall mesh is far from convex).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp

ASSET_DIR = Path(__file__).parent / "assets"
SCENE_FILES = {"primitive": "trifinger_pro_scene.xml", "mesh": "trifinger_pro_scene_mesh.xml"}
COLLISION_VARIANTS = tuple(SCENE_FILES)
WALL_SEGMENTS = 24
WALL_THICKNESS_M = 0.02

# Effective contact coefficients, PhysX-style averages of the paper's materials (task-spec 1.4):
# robot 1.0, cube 1.0, table 0.1, boundary 1.0 (IsaacGym default).
FRICTION = {
    "finger_cube": 1.0,
    "cube_table": 0.55,
    "finger_table": 0.55,
    "cube_wall": 1.0,
    "finger_wall": 1.0,
}
FINGERTIP_TORSION_M = 0.001
"""Torsional friction (m) of the fingertip-cube contact: a rubber tip resists spinning a little."""

LINK_ROLES = {"prox-sim": "upper", "int_sim": "middle", "tip_link_sim": "lower", "tip_sim": "tip"}


def urdf_path() -> Path:
    import robot_properties_fingers

    return Path(robot_properties_fingers.__file__).parent / "urdf" / "pro" / "trifingerpro.urdf"


def import_urdf() -> tuple[ET.Element, Path]:
    """Import the official URDF into MuJoCo and return its MJCF tree and the mesh folder."""
    import mujoco

    path = urdf_path()
    mesh_dir = path.parents[2] / "meshes" / "pro"
    compiler = (
        f'<mujoco><compiler meshdir="{mesh_dir}" strippath="true" balanceinertia="true" '
        'discardvisual="true" fusestatic="true"/></mujoco>'
    )
    urdf = re.sub(r"(<robot[^>]*>)", r"\1" + compiler, path.read_text(), count=1)
    spec = mujoco.MjSpec.from_string(urdf)
    return ET.fromstring(spec.to_xml()), mesh_dir


def _finger_of(body: ET.Element) -> str:
    return body.get("name").rsplit("_", 1)[1]


def _label_robot_geoms(root: ET.Element, variant: str) -> None:
    """Name each robot geom by role and finger; switch to fitted capsules for the primitive variant."""
    for body in root.iter("body"):
        for geom in list(body.iter("geom")):
            if geom.get("name"):
                continue
            role = LINK_ROLES[geom.get("mesh")]
            geom.set("name", f"finger_{role}_{_finger_of(body)}")
            geom.set("group", "3")
            # The tip carries almost every cube contact and its hull is 0.92 of the mesh's volume: keep it.
            if variant == "primitive" and role != "tip":
                geom.set("type", "capsule")
        lower = body.get("name", "")
        if lower.startswith("finger_lower_link_"):
            site = ET.SubElement(body, "site")
            site.set("name", f"fingertip_{_finger_of(body)}")
            site.set("pos", " ".join(str(v) for v in tp.FINGERTIP_OFFSET_M))
            site.set("size", "0.005")


def _add_visual_meshes(root: ET.Element) -> None:
    """Visual copies of the collision meshes (group 2) so renders show the real links."""
    for body in root.iter("body"):
        for parent in [body, *body.findall("frame")]:
            for geom in [g for g in parent.findall("geom") if g.get("group") == "3"]:
                visual = ET.SubElement(parent, "geom", {"type": "mesh", "mesh": geom.get("mesh"), "group": "2"})
                for key in ("pos", "quat", "rgba"):
                    if geom.get(key):
                        visual.set(key, geom.get(key))


def _add_scene(worldbody: ET.Element) -> None:
    ET.SubElement(worldbody, "light", {"pos": "0 0 1.0", "dir": "0 0 -1", "directional": "true"})
    ET.SubElement(
        worldbody,
        "geom",
        {"name": "table", "type": "plane", "size": "0.4 0.4 0.01", "pos": f"0 0 {tp.TABLE_Z_M}", "rgba": "0.6 0.6 0.6 1"},
    )
    half_width = (tp.ARENA_RADIUS_M + WALL_THICKNESS_M) * math.tan(math.pi / WALL_SEGMENTS) + 0.002
    center_r = tp.ARENA_RADIUS_M + WALL_THICKNESS_M / 2
    for k in range(WALL_SEGMENTS):
        angle = 2 * math.pi * k / WALL_SEGMENTS
        ET.SubElement(
            worldbody,
            "geom",
            {
                "name": f"wall_{k}",
                "type": "box",
                "size": f"{WALL_THICKNESS_M / 2} {half_width:.5f} {tp.BOUNDARY_HEIGHT_M / 2}",
                "pos": f"{center_r * math.cos(angle):.5f} {center_r * math.sin(angle):.5f} {tp.BOUNDARY_HEIGHT_M / 2}",
                "euler": f"0 0 {angle:.6f}",
                "rgba": "0.3 0.3 0.35 0.3",
            },
        )
    body = ET.SubElement(worldbody, "body", {"name": "cube", "pos": f"0 0 {cube.HALF_EDGE_M}"})
    ET.SubElement(body, "freejoint", {"name": "cube_joint"})
    h = cube.HALF_EDGE_M
    ET.SubElement(
        body, "geom", {"name": "cube", "type": "box", "size": f"{h} {h} {h}", "mass": str(cube.MASS_KG), "rgba": "0.9 0.3 0.2 1"}
    )
    ET.SubElement(body, "site", {"name": "cube_center", "size": "0.004"})


def _pair(contact: ET.Element, geom1: str, geom2: str, friction: float, condim: int = 3, torsion: float = 0.0) -> None:
    ET.SubElement(
        contact,
        "pair",
        {
            "name": f"{geom1}__{geom2}",
            "geom1": geom1,
            "geom2": geom2,
            "condim": str(condim),
            "friction": f"{friction} {friction} {torsion} 0.0001 0.0001",
        },
    )


def _add_contacts(root: ET.Element) -> None:
    contact = ET.SubElement(root, "contact")
    walls = [f"wall_{k}" for k in range(WALL_SEGMENTS)]
    _pair(contact, "cube", "table", FRICTION["cube_table"])
    for wall in walls:
        _pair(contact, "cube", wall, FRICTION["cube_wall"])
    for finger in tp.FINGER_NAMES:
        _pair(contact, f"finger_tip_{finger}", "cube", FRICTION["finger_cube"], condim=4, torsion=FINGERTIP_TORSION_M)
        for role in ("lower", "middle"):
            _pair(contact, f"finger_{role}_{finger}", "cube", FRICTION["finger_cube"])
        for role in ("tip", "lower"):
            _pair(contact, f"finger_{role}_{finger}", "table", FRICTION["finger_table"])
        for wall in walls:
            _pair(contact, f"finger_tip_{finger}", wall, FRICTION["finger_wall"])


def _add_actuators_and_sensors(root: ET.Element) -> None:
    actuators = ET.SubElement(root, "actuator")
    kd = tp.per_finger(tp.SAFETY_KD)
    for joint, kd_j in zip(tp.JOINT_NAMES, kd):
        limit = tp.MAX_TORQUE_NM
        ET.SubElement(
            actuators,
            "general",
            {
                "name": f"motor_{joint}",
                "joint": joint,
                "gainprm": "1",
                "biastype": "affine",
                "biasprm": f"0 0 {-kd_j}",
                # First-order lag of the commanded torque (time constant dynprm[0], 0 = none), integrated
                # exactly; actearly applies the new activation in the same step, so 0 means no delay at all.
                "dyntype": "filterexact",
                "dynprm": "0",
                "actearly": "true",
                "ctrllimited": "true",
                "ctrlrange": f"{-limit} {limit}",
                "forcelimited": "true",
                "forcerange": f"{-limit} {limit}",
            },
        )
    sensors = ET.SubElement(root, "sensor")
    for finger in tp.FINGER_NAMES:
        ET.SubElement(
            sensors,
            "contact",
            {
                "name": f"fingertip_contact_{finger}",
                "body1": f"finger_lower_link_{finger}",
                "body2": "cube",
                "num": "1",
                "data": "force torque",
                "reduce": "netforce",
            },
        )


def _add_keyframe(root: ET.Element) -> None:
    keyframe = ET.SubElement(root, "keyframe")
    home = " ".join(str(v) for v in tp.per_finger(tp.HOME_POSE_RAD))
    ET.SubElement(keyframe, "key", {"name": "home", "qpos": f"{home} 0 0 {cube.HALF_EDGE_M} 1 0 0 0"})


def build_scene(variant: str) -> str:
    """Return the scene MJCF text for a collision variant ('primitive' or 'mesh')."""
    if variant not in SCENE_FILES:
        raise ValueError(f"unknown collision variant {variant!r}; valid: {list(SCENE_FILES)}")
    root, _ = import_urdf()
    root.set("model", f"trifinger_pro_scene_{variant}")
    compiler = root.find("compiler")
    compiler.set("meshdir", "meshes")
    ET.SubElement(root, "option", {"timestep": "0.005", "integrator": "implicitfast", "cone": "pyramidal"})
    default = ET.SubElement(root, "default")
    ET.SubElement(default, "geom", {"contype": "0", "conaffinity": "0"})
    _label_robot_geoms(root, variant)
    _add_visual_meshes(root)
    _add_scene(root.find("worldbody"))
    _add_contacts(root)
    _add_actuators_and_sensors(root)
    _add_keyframe(root)
    ET.indent(root)
    header = "<!-- Generated by `python -m trifinger_s2r.robot.build_model` from robot-properties-fingers' trifingerpro.urdf. Do not edit. -->\n"
    return header + ET.tostring(root, encoding="unicode") + "\n"


def write_assets(out_dir: Path = ASSET_DIR) -> list[Path]:
    """Write both scene variants and copy the meshes they use."""
    _, mesh_dir = import_urdf()
    (out_dir / "meshes").mkdir(parents=True, exist_ok=True)
    for mesh in LINK_ROLES:
        shutil.copyfile(mesh_dir / f"{mesh}.stl", out_dir / "meshes" / f"{mesh}.stl")
    written = []
    for variant, name in SCENE_FILES.items():
        path = out_dir / name
        path.write_text(build_scene(variant))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET_DIR, help="asset folder to write into")
    args = parser.parse_args()
    for path in write_assets(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
