"""trifinger-s2r: TriFinger cube reposing from batched simulation to a remote robot."""

__version__ = "0.1.0"
