"""The RRC cube v2 and its keypoints."""

from __future__ import annotations

EDGE_M = 0.065
MASS_KG = 0.094
HALF_EDGE_M = EDGE_M / 2
CIRCUMRADIUS_M = EDGE_M * 3**0.5 / 2
"""Half the space diagonal: 0.05629 m."""

def corner_signs() -> list[tuple[int, int, int]]:
    """Signs of the 8 corners in the reference's order: corner i has -1 on axis k where bit k of i is set."""
    return [tuple(-1 if (i >> k) & 1 else 1 for k in range(3)) for i in range(8)]

