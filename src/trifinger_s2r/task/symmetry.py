"""The TriFinger's 3-fold rotational symmetry as data augmentation (rsl_rl's symmetry extension).

The fingers are copies of one another turned by 120 degrees about the arena's vertical axis (finger '120' is finger
'0' turned by -120 degrees, finger '240' by +120), and so are the arena and its walls. Turning a whole scene by +120
degrees gives another valid scene: each finger takes the joint values of the finger that turns into its place
(0 <- 120 <- 240 <- 0) and every horizontal vector turns with the scene. Applied to observations (actor and critic
groups) and actions, it gives two more valid samples per sample.
"""

from __future__ import annotations

import math

import torch
from tensordict import TensorDict

from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.task.geometry import quat_from_yaw, quat_mul
from trifinger_s2r.task.randomization import PARAMS_VECTOR_SIZE

FINGER_ORDER_AFTER_TURN = (1, 2, 0)
"""After a +120 degree turn, finger i holds what finger FINGER_ORDER_AFTER_TURN[i] held."""
TURN_RAD = 2 * math.pi / 3


def _permute_fingers(x: torch.Tensor) -> torch.Tensor:
    """(N, 3 * k) per-finger blocks, reordered."""
    return x.reshape(x.shape[0], 3, -1)[:, list(FINGER_ORDER_AFTER_TURN)].reshape(x.shape)


def _turn_vectors(x: torch.Tensor) -> torch.Tensor:
    """(N, 3 * k) consecutive (x, y, z) vectors, each turned by +120 degrees about z."""
    v = x.reshape(x.shape[0], -1, 3)
    c, s = math.cos(TURN_RAD), math.sin(TURN_RAD)
    turned = torch.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], dim=-1)
    return turned.reshape(x.shape)


def _turn_quats(x: torch.Tensor) -> torch.Tensor:
    """(N, 4 * k) consecutive xyzw quaternions, each pre-multiplied by the turn."""
    q = x.reshape(x.shape[0], -1, 4)
    turn = quat_from_yaw(torch.full(q.shape[:2], TURN_RAD, dtype=x.dtype, device=x.device))
    return quat_mul(turn, q).reshape(x.shape)


def _turn_rotation_6d(x: torch.Tensor) -> torch.Tensor:
    """(N, 6) first two columns of a world-frame relative rotation M, as those of R M R^T."""
    c1, c2 = x[:, :3], x[:, 3:]
    matrix = torch.stack([c1, c2, torch.linalg.cross(c1, c2)], dim=-1)  # columns
    c, s = math.cos(TURN_RAD), math.sin(TURN_RAD)
    turn = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    turned = turn @ matrix @ turn.T
    return turned[..., :, :2].transpose(-1, -2).reshape(-1, 6)


_ACTOR_PART_TRANSFORMS = {
    "joint_pos": _permute_fingers, "joint_vel": _permute_fingers, "last_action": _permute_fingers,
    "cube_keypoints": _turn_vectors, "goal_keypoints": _turn_vectors,
    "cube_position": _turn_vectors, "goal_position": _turn_vectors,
    "cube_quat_xyzw": _turn_quats, "goal_quat_xyzw": _turn_quats,
    "goal_from_cube_rotation_6d": _turn_rotation_6d,
}


def _tip_states(x: torch.Tensor) -> torch.Tensor:
    """(N, 3 * 13) fingertip pos | quat | linear velocity | angular velocity, per finger."""
    tips = x.reshape(x.shape[0], 3, 13)
    parts = [_turn_vectors(tips[..., :3].reshape(-1, 9)), _turn_quats(tips[..., 3:7].reshape(-1, 12)),
             _turn_vectors(tips[..., 7:10].reshape(-1, 9)), _turn_vectors(tips[..., 10:].reshape(-1, 9))]
    turned = torch.cat([p.reshape(-1, 3, k) for p, k in zip(parts, (3, 4, 3, 3))], dim=-1)
    return _permute_fingers(turned.reshape(x.shape))


_PRIVILEGED_LAYOUT = (
    ("cube_linvel", 3, _turn_vectors), ("cube_angvel", 3, _turn_vectors), ("tips", 39, _tip_states),
    ("applied_torque", 9, _permute_fingers),
    ("wrench", 18, lambda x: _permute_fingers(_turn_vectors(x))),  # world-frame force and torque per tip
)
_PARAMS_GRAVITY_XY = slice(4, 6)


def _apply(layout, x: torch.Tensor) -> torch.Tensor:
    out, start = [], 0
    for transform, size in layout:
        out.append(transform(x[:, start: start + size]))
        start += size
    if start != x.shape[1]:
        raise ValueError(f"observation has {x.shape[1]} values, its layout {start}")
    return torch.cat(out, dim=-1)


def turn_actor_observation(obs_type: str, x: torch.Tensor) -> torch.Tensor:
    """The actor observation (N, D) of the scene turned by +120 degrees."""
    layout = [(_ACTOR_PART_TRANSFORMS[name], size) for name, size in obs_fn.ACTOR_OBS_LAYOUT[obs_type]]
    return _apply(layout, x)


def _turn_params(x: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    gravity = torch.cat([x[:, _PARAMS_GRAVITY_XY], torch.zeros_like(x[:, :1])], dim=-1)
    out[:, _PARAMS_GRAVITY_XY] = _turn_vectors(gravity)[:, :2]
    return out


def turn_critic_observation(obs_type: str, x: torch.Tensor) -> torch.Tensor:
    """The critic observation (actor part | privileged state | parameters) of the scene turned by +120 degrees."""
    actor_size = obs_fn.ACTOR_OBS_SIZE[obs_type]
    layout = [(lambda a: turn_actor_observation(obs_type, a), actor_size)]
    layout += [(transform, size) for _, size, transform in _PRIVILEGED_LAYOUT]
    layout += [(_turn_params, PARAMS_VECTOR_SIZE)]
    return _apply(layout, x)


def turn_actions(actions: torch.Tensor) -> torch.Tensor:
    return _permute_fingers(actions)


def augment(env, obs: TensorDict | None = None, actions: torch.Tensor | None = None):
    """rsl_rl's data_augmentation_func: each sample followed (in blocks) by its scene turned by 120 and 240 degrees."""
    obs_type = env.task.obs_type
    obs_aug = actions_aug = None
    if obs is not None:
        policy, critic = [obs["policy"]], [obs["critic"]]
        for _ in range(2):
            policy.append(turn_actor_observation(obs_type, policy[-1]))
            critic.append(turn_critic_observation(obs_type, critic[-1]))
        obs_aug = TensorDict({"policy": torch.cat(policy), "critic": torch.cat(critic)},
                             batch_size=[3 * obs.batch_size[0]])
    if actions is not None:
        turned = [actions]
        for _ in range(2):
            turned.append(turn_actions(turned[-1]))
        actions_aug = torch.cat(turned)
    return obs_aug, actions_aug
