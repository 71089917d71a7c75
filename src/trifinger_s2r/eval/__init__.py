"""Evaluation: batched episodes, success rates with confidence intervals."""
