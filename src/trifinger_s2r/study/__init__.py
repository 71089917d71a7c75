"""The paper's studies as commands: observation/reward ablation, randomisation on/off, robustness to other objects.

Each study writes into its output folder a JSON of its results (`study.json`), matplotlib figures in the paper's
form, a `report.md` that embeds them, and a few H.264 videos with the keypoints drawn.
"""

STUDIES = ("ablation", "randomization", "robustness")
"""Study names, as `trifinger-s2r study NAME` takes them."""
