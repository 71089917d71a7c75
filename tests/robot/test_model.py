"""The generated MJCF matches the official URDF."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trifinger_s2r.robot import build_model
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend

pytest.importorskip("robot_properties_fingers")


class TestKinematics:
    @pytest.mark.parametrize("collision", build_model.COLLISION_VARIANTS)
    def test_fingertips_match_urdf_forward_kinematics(self, collision):
        """Fingertip sites lie within 1 mm of pinocchio's URDF fingertip frames for random joint angles."""
        from robot_properties_fingers.pinocchio_utils import Kinematics

        kin = Kinematics(build_model.urdf_path(), [f"finger_tip_link_{f}" for f in tp.FINGER_NAMES])
        rng = np.random.default_rng(0)
        low = np.array(tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD))
        high = np.array(tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD))
        q = rng.uniform(low, high, size=(20, 9))
        backend = MujocoCpuBackend(20, collision=collision, num_threads=1)
        far = torch.tensor([[0.5, 0.5, 0.0325]]).expand(20, 3)  # cube out of the way
        backend.reset(torch.arange(20), torch.from_numpy(q).float(), far, torch.tensor([[0, 0, 0, 1.0]]).expand(20, 4))
        tips = backend.state().fingertip_pos_m.numpy()
        for i in range(20):
            expected = np.stack(kin.forward_kinematics(q[i]))
            np.testing.assert_allclose(tips[i], expected, atol=1e-3)


class TestGeneratedModel:
    @pytest.mark.parametrize("collision", build_model.COLLISION_VARIANTS)
    def test_committed_model_is_regenerated_by_the_script(self, collision):
        """The committed scene equals what build_model writes now."""
        committed = (build_model.ASSET_DIR / build_model.SCENE_FILES[collision]).read_text()
        assert build_model.build_scene(collision) == committed

    def test_unknown_variant_names_the_valid_ones(self):
        with pytest.raises(ValueError, match="primitive"):
            build_model.build_scene("spheres")
