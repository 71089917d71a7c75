"""Farm fixtures: an in-process app, users, and bad policies as real ONNX files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from fastapi.testclient import TestClient

from trifinger_s2r.farm.api import FarmSettings, create_app
from trifinger_s2r.farm.store import JobStore, QueuePolicy


@pytest.fixture
def farm(tmp_path):
    """(client, store, settings) of a fresh farm with SQLite in tmp_path."""
    settings = FarmSettings(db_url=f"sqlite:///{tmp_path / 'farm.db'}", data_dir=tmp_path / "data",
                            queue=QueuePolicy(lease_s=5.0))
    store = JobStore(settings.db_url, settings.queue)
    return TestClient(create_app(settings, store)), store, settings


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload_files(bundle, onnx_bytes: bytes | None = None, metadata: dict | bytes | None = None) -> dict:
    onnx_bytes = (bundle / "policy.onnx").read_bytes() if onnx_bytes is None else onnx_bytes
    if metadata is None:
        metadata_bytes = (bundle / "metadata.json").read_bytes()
    else:
        metadata_bytes = metadata if isinstance(metadata, bytes) else json.dumps(metadata).encode()
    return {"policy": ("policy.onnx", onnx_bytes), "metadata": ("metadata.json", metadata_bytes)}


class _Constant(torch.nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, :9] * 0.0 + self.value


def bundle_with_output(tiny_bundle, tmp_path, value: float):
    """A copy of tiny_bundle whose network outputs `value` for every action."""
    out = tmp_path / f"bundle_{value}"
    shutil.copytree(tiny_bundle, out)
    torch.onnx.export(_Constant(value), (torch.zeros(2, 75),), str(out / "policy.onnx"), input_names=["obs"],
                      output_names=["actions"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                      opset_version=18, external_data=False)
    return out
