"""Calibration: fit the simulation's physical parameters to robot logs (logs -> replay windows -> least squares),
the scripted excitation that makes such logs without a policy, and the training ranges a calibration sets."""
