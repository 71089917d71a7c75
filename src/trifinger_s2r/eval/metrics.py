"""Success-rate statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, median


def wilson_interval(successes: int, trials: int, confidence: float = 0.8) -> tuple[float, float]:
    """Wilson score interval of a binomial success rate; the paper reports 80% intervals (N = 40 trials)."""
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, {trials}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def success_summary(
    successes: Sequence[bool], position_errors_m: Sequence[float], orientation_errors_rad: Sequence[float], level: int
) -> dict:
    """The eval/deploy JSON contract: success rate with its 80% Wilson interval and mean final errors."""
    episodes = len(successes)
    wins = int(sum(bool(s) for s in successes))
    low, high = wilson_interval(wins, episodes, 0.8)
    return {
        "success_rate": wins / episodes,
        "ci80_low": low,
        "ci80_high": high,
        "ci_method": "wilson",
        "episodes": episodes,
        "mean_position_error_m": float(sum(position_errors_m) / episodes),
        "mean_orientation_error_rad": float(sum(orientation_errors_rad) / episodes),
        "level": level,
    }


def lifted_summary(successes: Sequence[bool], orientation_errors_rad: Sequence[float], lifted: Sequence[bool]) -> dict:
    """Where a level-4 policy fails: the share of episodes ending lifted, and among those the success rate and the
    median orientation error (None where no episode ended lifted)."""
    if not len(successes) == len(orientation_errors_rad) == len(lifted) > 0:
        raise ValueError("successes, orientation errors and lifted flags must be equally long and non-empty")
    held = [i for i, up in enumerate(lifted) if up]
    return {
        "lifted_share": len(held) / len(lifted),
        "success_rate_lifted": sum(bool(successes[i]) for i in held) / len(held) if held else None,
        "median_orientation_error_lifted_rad": float(median(orientation_errors_rad[i] for i in held)) if held else None,
    }
