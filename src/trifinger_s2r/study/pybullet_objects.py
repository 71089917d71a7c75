"""The official PyBullet TriFinger (trifinger_simulation.TriFingerPlatform) with an object variant in place of the cube.

The platform is built as the deployment runner builds it (the coloured cube v2, its tracker and camera delay), then
its cube is replaced by trifinger_simulation's own `collision_objects.Cuboid` (the scaled cubes and the cuboid) or
a sphere made the same way (lateral friction 1, spinning friction 0.001, restitution 0, as trifinger_simulation sets
for its objects), at the same pose. The platform's object tracking reads `platform.cube`, so the policy sees the new
object's pose; the calibration's mass and friction apply relative to the cube's (mass x variant mass / 0.094 kg).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trifinger_s2r.deploy.platform import PyBulletRobot, RobotPlatform
from trifinger_s2r.robot import cube
from trifinger_s2r.robot.objects import ObjectVariant, variant

OBJECT_RGBA = (0.25, 0.55, 0.95, 1.0)


class PyBulletSphere:
    """A solid sphere in a PyBullet simulation; `get_state()` as trifinger_simulation's collision objects."""

    def __init__(self, position, orientation, radius_m: float, mass_kg: float, pybullet_client_id: int) -> None:
        import pybullet

        self._pybullet, self._pybullet_client_id = pybullet, pybullet_client_id
        shape = pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=radius_m, physicsClientId=pybullet_client_id)
        visual = pybullet.createVisualShape(pybullet.GEOM_SPHERE, radius=radius_m, rgbaColor=OBJECT_RGBA,
                                            physicsClientId=pybullet_client_id)
        self._object_id = pybullet.createMultiBody(
            baseMass=mass_kg, baseCollisionShapeIndex=shape, baseVisualShapeIndex=visual, basePosition=position,
            baseOrientation=orientation, physicsClientId=pybullet_client_id)
        pybullet.changeDynamics(self._object_id, -1, lateralFriction=1.0, spinningFriction=0.001, restitution=0.0,
                                physicsClientId=pybullet_client_id)

    def get_state(self) -> tuple[list[float], list[float]]:
        position, orientation = self._pybullet.getBasePositionAndOrientation(
            self._object_id, physicsClientId=self._pybullet_client_id)
        return list(position), list(orientation)

    def __del__(self) -> None:
        if self._pybullet.isConnected(self._pybullet_client_id):
            self._pybullet.removeBody(self._object_id, physicsClientId=self._pybullet_client_id)


def _make_object(obj: ObjectVariant, position, orientation, mass_kg: float, client: int):
    if obj.shape == "sphere":
        return PyBulletSphere(position, orientation, obj.half_size_m[0], mass_kg, client)
    from trifinger_simulation.collision_objects import Cuboid

    return Cuboid(position, orientation, half_extents=list(obj.half_size_m), mass=mass_kg, color_rgba=OBJECT_RGBA,
                  pybullet_client_id=client)


@dataclass
class ObjectPyBulletRobot(PyBulletRobot):
    """PyBulletRobot whose episodes use an object variant (robot.objects.VARIANTS) instead of the cube v2."""

    obj: str = "cube"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.object = variant(self.obj)

    def start_episode(self, initial_position_m: np.ndarray, initial_quat_xyzw: np.ndarray) -> RobotPlatform:
        platform = super().start_episode(initial_position_m, initial_quat_xyzw)
        if self.obj != "cube":
            self._replace_cube(initial_position_m, initial_quat_xyzw)
        return platform

    def _replace_cube(self, position_m: np.ndarray, quat_xyzw: np.ndarray) -> None:
        import pybullet

        sim = self._platform
        mass = self.calibration.cube_mass_kg * self.object.mass_kg / cube.MASS_KG
        new = _make_object(self.object, list(position_m), list(quat_xyzw), mass, self.pybullet_client_id)
        pybullet.changeDynamics(new._object_id, -1, lateralFriction=self.calibration.cube_lateral_friction,
                                physicsClientId=self.pybullet_client_id)
        sim.cube = new  # the cube v2 loses its last reference and removes itself from the simulation
        # The platform took its first camera observation of the cube v2 when it was built: take it again.
        sim._delayed_camera_observation = sim._get_current_camera_observation(0)
        sim._camera_observation_t = sim._delayed_camera_observation
