"""Object variants: mass, size and resting height, in the generated MuJoCo scenes and on the PyBullet TriFinger."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.objects import VARIANTS, variant
from trifinger_s2r.sim.model import load_model
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.study.object_env import HOME_TIP_AXIS_DISTANCE_M
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.goals import HOME_TIP_LOWEST_M
from trifinger_s2r.task.randomization import nominal_physics_params

HOME = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD))
IDENTITY = torch.tensor([[0.0, 0.0, 0.0, 1.0]])


class TestVariantFacts:
    def test_masses_follow_volume_at_the_cube_density(self):
        """x0.5 weighs 1/8 of the cube, x2 8 times; the 2 x 8 x 2 cm cuboid and the 6.5 cm sphere weigh their
        volume at 0.094 kg / 0.065^3 m^3."""
        masses = {name: v.mass_kg for name, v in VARIANTS.items()}
        assert masses["cube"] == cube.MASS_KG
        assert masses["cube_x0.5"] == pytest.approx(0.094 / 8)
        assert masses["cube_x2"] == pytest.approx(0.094 * 8)
        assert masses["cuboid"] == pytest.approx(0.094 * (0.02 * 0.08 * 0.02) / 0.065**3)
        assert masses["sphere"] == pytest.approx(0.094 * math.pi / 6)

    def test_sizes_and_resting_heights(self):
        """Resting centre heights: half the edge for cubes, 1 cm for the cuboid lying on a long side, the radius for
        the sphere."""
        assert VARIANTS["cube_x0.5"].half_size_m == pytest.approx((0.01625,) * 3)
        assert VARIANTS["cube_x2"].half_size_m == pytest.approx((0.065,) * 3)
        assert VARIANTS["cuboid"].half_size_m == (0.01, 0.04, 0.01)
        assert VARIANTS["sphere"].shape == "sphere" and VARIANTS["sphere"].half_size_m[0] == pytest.approx(0.0325)
        heights = {name: v.resting_height_m for name, v in VARIANTS.items()}
        assert heights == pytest.approx({"cube": 0.0325, "cube_x0.5": 0.01625, "cube_x2": 0.065, "cuboid": 0.01,
                                         "sphere": 0.0325})

    def test_unknown_variant_lists_the_valid_ones(self):
        with pytest.raises(ValueError, match=r"unknown object variant 'cone'; valid: \['cube'"):
            variant("cone")


def _settle(obj: str, start_xy=(0.0, 0.0), steps: int = 100) -> MujocoCpuBackend:
    """Drop the object 1 cm above its resting height with the fingers held at home; 2 s of simulation."""
    backend = MujocoCpuBackend(1, num_threads=1, obj=obj)
    backend.set_params(torch.arange(1), nominal_physics_params(1, TaskConfig()))
    start = torch.tensor([[*start_xy, variant(obj).resting_height_m + 0.01]])
    backend.reset(torch.arange(1), HOME.expand(1, 9), start, IDENTITY)
    for _ in range(steps):
        s = backend.state()
        backend.step(2.0 * (HOME - s.joint_pos_rad) - 0.05 * s.joint_vel_radps)
    return backend


class TestMujocoVariants:
    @pytest.mark.parametrize("obj", list(VARIANTS))
    def test_dropped_object_settles_at_its_resting_height(self, obj):
        backend = _settle(obj)
        state = backend.state()
        np.testing.assert_allclose(state.cube_pos_m[0, 2], variant(obj).resting_height_m, atol=5e-4)
        assert state.cube_linvel_mps.norm() < 2e-3

    @pytest.mark.parametrize("obj", list(VARIANTS))
    def test_simulated_mass_size_and_inertia_are_the_variant_s(self, obj):
        """After set_params (nominal: scale 1, mass x1) the simulation holds the variant's geometry and mass."""
        v = variant(obj)
        backend = MujocoCpuBackend(2, num_threads=1, obj=obj)
        backend.set_params(torch.arange(2), nominal_physics_params(2, TaskConfig()))
        ix = backend.index
        np.testing.assert_allclose(backend.batch.expanded("body_mass")[:, ix.cube_body], v.mass_kg)
        size = backend.batch.expanded("geom_size")[:, ix.cube_geom]
        np.testing.assert_allclose(size[:, 0] if v.shape == "sphere" else size, np.broadcast_to(
            v.half_size_m[0] if v.shape == "sphere" else v.half_size_m, size[:, 0].shape if v.shape == "sphere"
            else size.shape))
        model = load_model(obj=obj)
        expected_type = mujoco.mjtGeom.mjGEOM_SPHERE if v.shape == "sphere" else mujoco.mjtGeom.mjGEOM_BOX
        assert model.geom_type[ix.cube_geom] == expected_type
        np.testing.assert_allclose(backend.batch.expanded("body_inertia")[0, ix.cube_body],
                                   model.body_inertia[ix.cube_body], rtol=1e-6)

    def test_default_scene_is_the_committed_cube(self):
        """load_model() without an object is the committed scene: a 6.5 cm, 94 g box."""
        model = load_model()
        geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "cube")
        np.testing.assert_allclose(model.geom_size[geom], cube.HALF_EDGE_M)
        assert model.body_mass[model.geom_bodyid[geom]] == pytest.approx(cube.MASS_KG)

    def test_home_fingertips_clear_the_x2_cube_at_the_centre(self):
        """The tips' lowest point at home is 6.9 cm up and 9.55 cm from the axis (the x2 cube's start rule), so the
        13 cm cube resting at the centre touches no finger."""
        model = load_model()
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, 0)
        mujoco.mj_forward(model, data)
        lowest, nearest = [], []
        for finger in tp.FINGER_NAMES:
            g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"finger_tip_{finger}")
            mesh = model.geom_dataid[g]
            verts = model.mesh_vert[model.mesh_vertadr[mesh]:model.mesh_vertadr[mesh] + model.mesh_vertnum[mesh]]
            world = verts @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g]
            lowest.append(world[:, 2].min())
            nearest.append(np.linalg.norm(world[:, :2], axis=1).min())
        assert min(lowest) == pytest.approx(HOME_TIP_LOWEST_M, abs=5e-4)
        assert min(nearest) == pytest.approx(HOME_TIP_AXIS_DISTANCE_M, abs=5e-4)
        x2 = load_model(obj="cube_x2")
        data = mujoco.MjData(x2)
        cube_geom = mujoco.mj_name2id(x2, mujoco.mjtObj.mjOBJ_GEOM, "cube")
        for yaw in np.linspace(0, math.pi / 2, 7):
            mujoco.mj_resetDataKeyframe(x2, data, 0)  # home pose, the x2 cube resting at the centre
            data.qpos[tp.NUM_JOINTS + 3:tp.NUM_JOINTS + 7] = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
            mujoco.mj_forward(x2, data)
            touching = [c for c in data.contact[:data.ncon] if cube_geom in (c.geom1, c.geom2)
                        and any(x2.geom(int(g)).name.startswith("finger_") for g in (c.geom1, c.geom2))]
            assert not touching, yaw


class TestPyBulletVariants:
    @pytest.mark.parametrize("obj", list(VARIANTS))
    def test_object_rests_at_its_height_and_is_the_tracked_one(self, obj):
        """The swapped-in object rests at its height (the cube v2 mesh 1 mm higher) with the variant's mass, and
        the platform's object tracking reports it."""
        import pybullet

        from trifinger_s2r.deploy.tracker import TrackerConfig
        from trifinger_s2r.study.pybullet_objects import ObjectPyBulletRobot

        v = variant(obj)
        robot = ObjectPyBulletRobot(obj=obj, tracker=TrackerConfig(enabled=False))
        platform = robot.start_episode(np.array([0.0, 0.0, v.resting_height_m + 0.005]), np.array([0, 0, 0, 1.0]))
        home = np.array(tp.per_finger(tp.HOME_POSE_RAD))
        for _ in range(800):
            t = platform.append_desired_action(platform.Action(np.zeros(9), position=home))
        position, _ = robot.true_object_pose()
        tracked = platform.get_camera_observation(t).filtered_object_pose.position
        mass = pybullet.getDynamicsInfo(robot._platform.cube._object_id, -1,
                                        physicsClientId=robot.pybullet_client_id)[0]
        del platform
        robot.close()
        assert position[2] == pytest.approx(v.resting_height_m, abs=1.5e-3 if obj == "cube" else 5e-4)
        np.testing.assert_allclose(tracked, position, atol=1e-3)
        assert mass == pytest.approx(v.mass_kg)
