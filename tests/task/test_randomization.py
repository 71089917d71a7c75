"""Domain randomisation: variability and bounds."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task.config import TaskConfig, Uniform
from trifinger_s2r.task.randomization import noisy_action, sample_physics_params


class TestPhysicsParams:
    def test_envs_get_distinct_masses_inside_the_range(self, generator):
        """N envs get N distinct cube masses, all within x[0.7, 1.3] of 0.094 kg."""
        params = sample_physics_params(256, TaskConfig(), generator)
        mass = params.cube_mass_kg
        assert mass.unique().numel() == 256
        assert mass.min() >= 0.7 * cube.MASS_KG and mass.max() <= 1.3 * cube.MASS_KG

    def test_every_range_is_respected(self, generator):
        dr = TaskConfig().randomization
        p = sample_physics_params(512, TaskConfig(), generator)
        assert p.cube_edge_m.min() >= dr.cube_scale.low * cube.EDGE_M
        assert p.cube_edge_m.max() <= dr.cube_scale.high * cube.EDGE_M
        assert p.torque_limit_nm.max() <= 0.396 + 1e-6
        assert 0.0 <= p.action_lag_s.min() and p.action_lag_s.max() <= dr.action_lag_s.high
        assert 0.5 * (1.0 + 0.7) <= p.finger_cube_friction.min() and p.finger_cube_friction.max() <= 0.5 * (1.0 + 1.3)
        assert p.safety_kd.unique().numel() > 100

    def test_disabled_randomization_gives_the_nominal_robot(self, generator):
        task = TaskConfig()
        task = replace(task, randomization=replace(task.randomization, enabled=False))
        p = sample_physics_params(8, task, generator)
        assert torch.all(p.cube_mass_kg == cube.MASS_KG)
        assert torch.all(p.torque_limit_nm == 0.396)


class TestActionNoise:
    def test_noisy_action_stays_in_bounds_and_differs(self, generator):
        dr = TaskConfig().randomization
        action = torch.ones(100, 9)
        noisy = noisy_action(action, torch.zeros(100, 9), dr, generator)
        assert noisy.max() <= 1.0 and noisy.min() >= 0.9
        assert (noisy < 1.0).any()


class TestWholeCubeScale:
    def _task(self, whole: bool, **kw) -> TaskConfig:
        task = TaskConfig(level=1)
        dr = replace(task.randomization, cube_scale=Uniform(0.5, 2.0), cube_mass_scale=Uniform(1.0, 1.0),
                     whole_cube_scale=whole)
        return replace(task, randomization=dr, **kw)

    def test_mass_follows_the_volume(self, generator):
        p = sample_physics_params(256, self._task(True), generator)
        density = p.cube_mass_kg / p.cube_edge_m**3
        assert torch.allclose(density, torch.full_like(density, cube.MASS_KG / cube.EDGE_M**3), rtol=1e-4)
        assert p.cube_mass_kg.max() > 4 * cube.MASS_KG and p.cube_mass_kg.min() < 0.25 * cube.MASS_KG

    def test_without_it_only_the_size_changes(self, generator):
        p = sample_physics_params(64, self._task(False), generator)
        assert torch.all(p.cube_mass_kg == cube.MASS_KG)

    def test_grasped_starts_are_refused(self):
        with pytest.raises(ValueError, match="whole_cube_scale"):
            self._task(True, grasp_start_share=0.5, level=4)

    def test_evaluation_judges_the_standard_cube(self):
        from trifinger_s2r.task.config import RandomizationConfig, for_evaluation

        judged = for_evaluation(self._task(True)).randomization
        default = RandomizationConfig()
        assert (judged.cube_scale, judged.cube_mass_scale, judged.whole_cube_scale) == (
            default.cube_scale, default.cube_mass_scale, False)
        assert for_evaluation(self._task(False)).randomization.cube_scale == Uniform(0.5, 2.0)  # a size study's own
