"""Physics backends behind one seam (backend.PhysicsBackend)."""

BACKENDS = ("mujoco", "warp")
"""Physics backends by name: 'mujoco' (native MuJoCo, CPU threads) and 'warp' (MuJoCo Warp on the env's device:
a CUDA GPU, or Warp's CPU device)."""
