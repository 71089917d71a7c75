"""Exported policies: the actor (with its observation normaliser) as ONNX plus a metadata JSON."""
