"""ReposeEnv: a physics backend + the reposing task, batched, auto-resetting; rsl_rl's `VecEnv`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim import BACKENDS
from trifinger_s2r.sim.backend import PhysicsBackend, PhysicsParams, SimState
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.sim.object_mix import env_object_indices
from trifinger_s2r.task import curriculum, goals, object_rules
from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.task.camera import CameraPoseModel
from trifinger_s2r.task.config import CameraConfig, TaskConfig
from trifinger_s2r.task.geometry import keypoints, rotation_angle_between
from trifinger_s2r.task.randomization import (
    PARAMS_VECTOR_SIZE,
    noisy_action,
    params_vector,
    sample_action_bias,
    sample_physics_params,
)
from trifinger_s2r.task.rewards import compute_rewards
from trifinger_s2r.timing import Timing

CUBE_DROP_HEIGHT_M = 0.0005
"""A reset cube starts this far above its resting height, so it never starts in the table."""


@dataclass(frozen=True)
class EnvConfig:
    """A batch of reposing environments."""

    num_envs: int = 512
    backend: str = "mujoco"
    """One of BACKENDS."""
    collision: str = "primitive"
    """Collision geometry of the fingers: 'primitive' (fitted capsules + tip hull) or 'mesh' (convex hulls)."""
    num_threads: int = 0
    """Simulation threads (0: all cores)."""
    seed: int = 0
    device: str = "cpu"
    task: TaskConfig = field(default_factory=TaskConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.num_envs, int) or self.num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {self.num_envs!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; valid: {list(BACKENDS)}")


def make_backend(cfg: EnvConfig, timing: Timing) -> PhysicsBackend:
    objects = cfg.task.randomization.objects
    contact = ContactModel(cone=cfg.task.friction_cone, impratio=cfg.task.impratio)
    if objects:
        if cfg.backend != "mujoco":
            raise ValueError(f"randomization.objects needs the 'mujoco' backend, got {cfg.backend!r}")
        from trifinger_s2r.sim.object_mix import ObjectMixBackend

        return ObjectMixBackend(cfg.num_envs, objects, timing, cfg.collision, cfg.num_threads, contact)
    if cfg.backend == "mujoco":
        from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend

        return MujocoCpuBackend(cfg.num_envs, timing, cfg.collision, cfg.num_threads, contact=contact)
    if cfg.backend == "warp":
        from trifinger_s2r.sim.mujoco_warp_backend import MujocoWarpBackend, warp_available

        if not warp_available():
            raise RuntimeError("backend 'warp' needs the warp-lang and mujoco-warp packages: pip install "
                               "'trifinger-s2r[gpu]'")
        device = torch.device(cfg.device)
        warp_device = f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu"
        return MujocoWarpBackend(cfg.num_envs, timing, cfg.collision, device=warp_device, contact=contact)
    raise ValueError(f"unknown backend {cfg.backend!r}; valid: {list(BACKENDS)}")


class ReposeEnv(VecEnv):
    """Move the cube to a goal pose; observation groups 'policy' (actor) and 'critic' (privileged)."""

    def __init__(self, cfg: EnvConfig | None = None, backend: PhysicsBackend | None = None) -> None:
        self.cfg = cfg = cfg or EnvConfig()
        self.task: TaskConfig = cfg.task
        self.timing = Timing.from_mode(self.task.physics_mode)
        self.device = torch.device(cfg.device)
        self.num_envs = cfg.num_envs
        self.num_actions = tp.NUM_JOINTS
        self.max_episode_length = self.task.episode_length_steps
        self.backend = backend or make_backend(cfg, self.timing)
        objects = self.task.randomization.objects
        self.objects = (object_rules.object_table(objects, env_object_indices(self.num_envs, len(objects)).to(
            self.device)) if objects else None)
        """Which object each env holds (randomization.objects); None: the cube."""
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.camera = CameraPoseModel(
            self.num_envs,
            self.task.randomization.camera if self.task.randomization.enabled else CameraConfig(enabled=False),
            self.timing.policy_rate_hz,
            self.timing.camera_rate_hz,
            self.device,
        )
        self._init_buffers()
        self.curriculum_state = curriculum.initial_state(self.task.curriculum)
        self._grasps = _load_grasps(self.device) if self.task.grasp_start_share > 0 else None
        self.params = sample_physics_params(
            self.num_envs, self.task, self.generator, self.device
        )
        self.reset()

    # --- sizes -----------------------------------------------------------------------------------

    @property
    def num_actor_obs(self) -> int:
        return obs_fn.ACTOR_OBS_SIZE[self.task.obs_type]

    @property
    def num_critic_obs(self) -> int:
        objects = object_rules.OBJECT_FEATURE_SIZE if self.objects is not None else 0
        return obs_fn.ACTOR_OBS_SIZE[self.task.obs_type] + obs_fn.PRIVILEGED_SIZE + PARAMS_VECTOR_SIZE + objects

    def _init_buffers(self) -> None:
        n, d = self.num_envs, self.device
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=d)
        self.last_action = torch.zeros(n, tp.NUM_JOINTS, device=d)
        self.action_bias = torch.zeros(n, tp.NUM_JOINTS, device=d)
        self.goal_pos_m = torch.zeros(n, 3, device=d)
        self.goal_quat = torch.zeros(n, 4, device=d)
        self.goal_is_level_4 = torch.zeros(n, dtype=torch.bool, device=d)
        """Whether each env's goal was drawn from level 4 itself (always, without a curriculum)."""
        self.prev_tip_pos_m = torch.zeros(n, 3, 3, device=d)
        self.prev_cube_pos_m = torch.zeros(n, 3, device=d)
        self.episode_reward_sums: dict[str, torch.Tensor] = {}
        self.total_env_steps = 0
        self.nonfinite_resets = 0

    # --- resets ----------------------------------------------------------------------------------

    def _reset_envs(self, env_ids: torch.Tensor) -> None:
        """New goal, cube pose, physical parameters and noise for the listed envs."""
        n = len(env_ids)
        if n == 0:
            return
        g, d, task = self.generator, self.device, self.task
        new_params = sample_physics_params(n, task, g, d)
        _assign_rows(self.params, env_ids, new_params)
        self.backend.set_params(env_ids, new_params)
        joint_pos, cube_pos, cube_quat, grasped = self._initial_states(env_ids, new_params.cube_edge_m)
        self.backend.reset(env_ids, joint_pos, cube_pos, cube_quat)
        goal_pos, self.goal_quat[env_ids], self.goal_is_level_4[env_ids] = self._sample_goals(cube_quat)
        if task.randomization.whole_cube_scale:
            edge = new_params.cube_edge_m
            goal_pos = goals.object_goals(task.level, goal_pos, goals.cube_bounding_radius_m(edge), edge / 2)
        if self.objects is not None:
            goal_pos = object_rules.goal_positions(self.objects, env_ids, task.level, goal_pos)
        self.goal_pos_m[env_ids] = self._near_grasp_goals(goal_pos, cube_pos, grasped, self.goal_is_level_4[env_ids])
        self.action_bias[env_ids] = sample_action_bias(n, task.randomization, g, d)
        self.last_action[env_ids] = 0.0
        self.episode_length_buf[env_ids] = 0
        for sums in self.episode_reward_sums.values():
            sums[env_ids] = 0.0
        self.camera.reset(env_ids, cube_pos, cube_quat, g)

    def _initial_states(self, env_ids: torch.Tensor, cube_edge_m: torch.Tensor):
        """Joint positions, cube poses and whether each starts grasped, for the envs reset: on the table at home, or
        (grasp_start_share of them) in a cached grasp of the lifted cube."""
        g, d, n = self.generator, self.device, len(env_ids)
        cube_pos, cube_quat = goals.sample_initial_pose(n, g, d)
        if self.task.randomization.whole_cube_scale:
            cube_pos = goals.object_starts(cube_pos, goals.cube_bounding_radius_m(cube_edge_m), cube_edge_m / 2)
        cube_pos[:, 2] = cube_edge_m / 2 + CUBE_DROP_HEIGHT_M
        if self.objects is not None:  # the cube's size randomisation scales each object alike
            cube_pos = object_rules.start_positions(self.objects, env_ids, cube_pos, cube_edge_m / cube.EDGE_M)
            cube_pos[:, 2] += CUBE_DROP_HEIGHT_M
            cube_quat = object_rules.start_quats(self.objects, env_ids, cube_quat, g)
        joint_pos = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD), device=d).expand(n, -1).clone()
        grasped = torch.zeros(n, dtype=torch.bool, device=d)
        if self._grasps is not None:
            grasped = torch.rand(n, generator=g, device=d) < self.task.grasp_start_share
            pick = torch.randint(0, len(self._grasps[0]), (int(grasped.sum()),), generator=g, device=d)
            joint_pos[grasped], cube_pos[grasped], cube_quat[grasped] = (part[pick] for part in self._grasps)
        return joint_pos, cube_pos, cube_quat, grasped

    def resting_height_m(self) -> torch.Tensor:
        """(N,) height of each env's object centre when it rests on the table."""
        if self.objects is None:
            return self.params.cube_edge_m / 2
        return object_rules.resting_height_m(self.objects, self.params.cube_edge_m / cube.EDGE_M)

    def _near_grasp_goals(self, goal_pos, cube_pos, grasped, is_level_4) -> torch.Tensor:
        """The lift stage's reverse curriculum: grasped starts get a goal near where the cube is held."""
        cfg = self.task.curriculum
        if not (cfg.enabled and cfg.grasp_goal_radius_m > 0 and curriculum.stage_name(cfg, self.curriculum_state)
                == "lift"):
            return goal_pos
        near = grasped & ~is_level_4
        return torch.where(near[:, None], curriculum.goals_near(cube_pos, cfg.grasp_goal_radius_m, self.generator),
                           goal_pos)

    def _sample_goals(self, cube_quat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Goals for envs starting at cube_quat: the curriculum's when it is on, else the level's."""
        if self.task.curriculum.enabled:
            return curriculum.sample_goals(self.task.curriculum, self.curriculum_state, cube_quat, self.generator)
        pos, quat = goals.sample_goal(self.task.level, len(cube_quat), self.generator, self.device)
        return pos, quat, torch.full((len(cube_quat),), self.task.level == 4, device=self.device)

    def _start_history(self, env_ids: torch.Tensor, state: SimState) -> None:
        """Reset-aware history: a new episode's 'previous step' is its first state."""
        self.prev_tip_pos_m[env_ids] = state.fingertip_pos_m[env_ids]
        self.prev_cube_pos_m[env_ids] = state.cube_pos_m[env_ids]

    def reset(self) -> tuple[TensorDict, dict]:
        """Reset every env (rsl_rl never calls this; the env auto-resets)."""
        all_ids = torch.arange(self.num_envs, device=self.device)
        self._reset_envs(all_ids)
        self._state = self.backend.state()
        self._start_history(all_ids, self._state)
        self._obs = self._observe(self._state)
        return self._obs, {}

    # --- step ------------------------------------------------------------------------------------

    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions must have shape {(self.num_envs, self.num_actions)}, got {tuple(actions.shape)}")
        bad = ~torch.isfinite(actions).all(dim=1)
        if bad.any():
            raise ValueError(f"non-finite actions for envs {torch.nonzero(bad).flatten().tolist()[:10]}")
        actions = actions.to(self.device)
        self.last_action = noisy_action(actions, self.action_bias, self.task.randomization, self.generator)
        self.backend.step(self.last_action * self.task.torque_limit_nm)
        self.episode_length_buf += 1
        self.total_env_steps += self.num_envs

        state = self.backend.state()
        nonfinite = self.backend.nonfinite_envs().to(self.device)
        true_kp = self._true_keypoints(state)
        rewards, terms = self._rewards(state, true_kp)
        rewards = torch.where(nonfinite, torch.zeros_like(rewards), torch.nan_to_num(rewards))
        self._accumulate(terms, nonfinite)
        pos_err, rot_err, success = self._errors(state)
        time_outs = self.episode_length_buf >= self.max_episode_length
        dones = time_outs | nonfinite
        log = self._episode_log(time_outs, nonfinite, pos_err, rot_err, success, state)

        done_ids = torch.nonzero(dones).flatten()
        self._reset_envs(done_ids)
        if done_ids.numel():
            state = self.backend.state()
            true_kp = self._true_keypoints(state)
        self._obs = self._observe(state, true_kp)
        self.prev_tip_pos_m = state.fingertip_pos_m.clone()
        self.prev_cube_pos_m = state.cube_pos_m.clone()
        self._state = state
        return self._obs, rewards, dones, {"time_outs": time_outs, "log": log}

    # --- task terms ------------------------------------------------------------------------------

    def _goal_orientation(self, cube_quat: torch.Tensor) -> torch.Tensor:
        return goals.judged_goal_quat(self.task.level, self.goal_quat, cube_quat)

    def _true_keypoints(self, state: SimState) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (N, 8, 3) of the true cube and of the goal pose judged against it."""
        goal_quat = self._goal_orientation(state.cube_quat_xyzw)
        return keypoints(state.cube_pos_m, state.cube_quat_xyzw), keypoints(self.goal_pos_m, goal_quat)

    def _rewards(
        self, state: SimState, true_kp: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        goal_quat = self._goal_orientation(state.cube_quat_xyzw)
        return compute_rewards(
            self.task.reward_type,
            self.task.rewards,
            self.timing.policy_dt_s,
            self.total_env_steps,
            tip_pos_m=state.fingertip_pos_m,
            prev_tip_pos_m=self.prev_tip_pos_m,
            cube_pos_m=state.cube_pos_m,
            prev_cube_pos_m=self.prev_cube_pos_m,
            cube_quat=state.cube_quat_xyzw,
            goal_pos_m=self.goal_pos_m,
            goal_quat=goal_quat,
            cube_kp_m=true_kp[0],
            goal_kp_m=true_kp[1],
            cube_angvel_radps=state.cube_angvel_radps,
        )

    def _errors(self, state: SimState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Position error (m), orientation error (rad) and success flag of each env."""
        pos_err = (state.cube_pos_m - self.goal_pos_m).norm(dim=-1)
        rot_err = rotation_angle_between(state.cube_quat_xyzw, self.goal_quat)
        success = pos_err <= self.task.success_position_m
        if goals.orientation_matters(self.task.level):
            success &= rot_err <= self.task.success_orientation_rad
        return pos_err, rot_err, success

    def _accumulate(self, terms: dict[str, torch.Tensor], nonfinite: torch.Tensor) -> None:
        for name, value in terms.items():
            sums = self.episode_reward_sums.setdefault(name, torch.zeros(self.num_envs, device=self.device))
            sums += torch.where(nonfinite, torch.zeros_like(value), torch.nan_to_num(value))

    def _episode_log(self, time_outs, nonfinite, pos_err, rot_err, success, state) -> dict[str, torch.Tensor]:
        """Per-episode values of the episodes that ended this step (rsl_rl averages them over an iteration)."""
        self.nonfinite_resets += int(nonfinite.sum())
        log: dict[str, torch.Tensor | float] = {"Env/nonfinite_resets_total": float(self.nonfinite_resets)}
        ended = time_outs & ~nonfinite
        if self.task.curriculum.enabled:
            log.update(self._advance_curriculum(ended, success))
        if ended.any():
            log["Episode/success_rate"] = success[ended].float()
            log["Episode/final_position_error_m"] = pos_err[ended]
            log["Episode/final_orientation_error_rad"] = rot_err[ended]
            lifted = state.cube_pos_m[:, 2] > self.resting_height_m() + goals.LIFTED_M
            log["Episode/lifted_at_end"] = lifted[ended].float()
            if self.objects is not None:
                for index, name in enumerate(self.objects.names):
                    mine = ended & (self.objects.env_object == index)
                    if mine.any():
                        log[f"Episode/success_{name}"] = success[mine].float()
            if (ended & self.goal_is_level_4).any():
                log["Episode/success_level_4_goals"] = success[ended & self.goal_is_level_4].float()
            for name, sums in self.episode_reward_sums.items():
                log[f"Episode_Reward/{name}"] = sums[ended].clone()
        return log

    def _observe(self, state: SimState, true_kp: tuple[torch.Tensor, torch.Tensor] | None = None) -> TensorDict:
        task, dr = self.task, self.task.randomization
        seen_pos, seen_quat = self.camera.observe(
            self.episode_length_buf, state.cube_pos_m, state.cube_quat_xyzw, self.generator
        )
        goal_quat = self._goal_orientation(seen_quat)
        actor = obs_fn.actor_observation(
            task.obs_type, state.joint_pos_rad, state.joint_vel_radps, seen_pos, seen_quat,
            self.goal_pos_m, goal_quat, self.last_action,
        )
        actor = obs_fn.add_noise_and_clip(actor, dr.obs_noise_std if dr.enabled else 0.0, self.generator)
        if true_kp is None:
            true_kp = self._true_keypoints(state)
        true_actor = obs_fn.actor_observation(
            task.obs_type, state.joint_pos_rad, state.joint_vel_radps, state.cube_pos_m, state.cube_quat_xyzw,
            self.goal_pos_m, self._goal_orientation(state.cube_quat_xyzw), self.last_action, *true_kp,
        )
        privileged = obs_fn.privileged_state(
            state.cube_linvel_mps, state.cube_angvel_radps, state.fingertip_pos_m, state.fingertip_quat_xyzw,
            state.fingertip_linvel_mps, state.fingertip_angvel_radps, state.applied_torque_nm,
            state.fingertip_wrench, task.torque_limit_nm,
        )
        parts = [true_actor, privileged, params_vector(self.params, task)]
        if self.objects is not None:
            parts.append(self.objects.features[self.objects.env_object])
        critic = torch.cat(parts, dim=-1)
        critic = critic.nan_to_num().clamp(-obs_fn.OBS_CLIP, obs_fn.OBS_CLIP)
        return TensorDict({"policy": actor.nan_to_num(), "critic": critic}, batch_size=[self.num_envs])

    def _advance_curriculum(self, ended: torch.Tensor, success: torch.Tensor) -> dict[str, float]:
        """Count the ended curriculum episodes (not the level-4 share) towards promotion; the curriculum's log."""
        cfg = self.task.curriculum
        counted = ended & ~self.goal_is_level_4 if not curriculum.is_final(cfg, self.curriculum_state) else ended
        self.curriculum_state = curriculum.record_episodes(
            cfg, self.curriculum_state, int(success[counted].sum()), int(counted.sum()))
        return {"Curriculum/difficulty": curriculum.difficulty(cfg, self.curriculum_state),
                "Curriculum/stage_index": float(self.curriculum_state.stage_index),
                "Curriculum/max_tilt_rad": self.curriculum_state.tilt_rad,
                "Curriculum/max_yaw_rad": self.curriculum_state.yaw_rad,
                "Curriculum/promotions": float(self.curriculum_state.promotions),
                "Curriculum/promote_success": curriculum.promotion_threshold(cfg, self.curriculum_state)}

    def training_state(self) -> dict:
        """What a checkpoint must keep of the env for training to resume where it stopped."""
        return {"curriculum": self.curriculum_state.to_dict(), "total_env_steps": self.total_env_steps}

    def load_training_state(self, saved: dict) -> None:
        if "curriculum" in saved:
            self.curriculum_state = curriculum.CurriculumState.from_dict(saved["curriculum"])
        self.total_env_steps = int(saved.get("total_env_steps", self.total_env_steps))

    @property
    def state(self) -> SimState:
        """The simulator state behind the current observation."""
        return self._state


def _assign_rows(target: PhysicsParams, env_ids: torch.Tensor, rows: PhysicsParams) -> None:
    for name, value in vars(rows).items():
        getattr(target, name)[env_ids] = value


def _load_grasps(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from trifinger_s2r.sim.grasps import Grasps

    grasps = Grasps.load()
    return tuple(torch.as_tensor(a, device=device) for a in (grasps.joint_pos_rad, grasps.cube_pos_m,
                                                               grasps.cube_quat_xyzw))
