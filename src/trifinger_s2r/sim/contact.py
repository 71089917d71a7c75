"""How stiff the scene's friction is: MuJoCo's friction cone and its impedance ratio, set for every contact.

MuJoCo's default (pyramidal cone, impratio 1) is soft in the tangential direction: an object pushed with less than
its friction limit still creeps (the cube at 73% of the limit moves 2.2 mm/s; `bench friction`), where PyBullet's
contacts stick. An elliptic cone with impratio 10 makes friction nearly hard (0.16 mm/s there), at the price of a
slower solver. Plain data here (no MuJoCo import), so configs can name it without loading the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

FRICTION_CONES = ("pyramidal", "elliptic")


@dataclass(frozen=True)
class ContactModel:
    cone: str = "pyramidal"
    impratio: float = 1.0
    """Ratio of frictional to normal constraint impedance; > 1 makes friction stiffer (MuJoCo recommends it with
    elliptic cones)."""

    def __post_init__(self) -> None:
        if self.cone not in FRICTION_CONES:
            raise ValueError(f"unknown friction cone {self.cone!r}; valid: {list(FRICTION_CONES)}")
        if not self.impratio >= 1.0:
            raise ValueError(f"impratio must be >= 1, got {self.impratio}")

    def apply(self, model) -> None:
        """Set the cone and impratio of a MuJoCo model (in place)."""
        import mujoco

        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC if self.cone == "elliptic" else mujoco.mjtCone.mjCONE_PYRAMIDAL
        model.opt.impratio = self.impratio
