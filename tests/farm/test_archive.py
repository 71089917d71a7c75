"""A worker's results archive: unpacked with every path checked, refused by name (and HTTP status) otherwise."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from trifinger_s2r.farm.archive import ArchiveError, unpack_results, zip_folder


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_a_results_folder_round_trips(tmp_path):
    source = tmp_path / "source"
    (source / "episode_000").mkdir(parents=True)
    (source / "report.json").write_text(json.dumps({"episodes": 1}))
    (source / "episode_000" / "log.npz").write_bytes(b"x")
    report = unpack_results(zip_folder(source), tmp_path / "out", limit_bytes=1 << 20)
    assert report == {"episodes": 1}
    assert (tmp_path / "out" / "episode_000" / "log.npz").read_bytes() == b"x"


@pytest.mark.parametrize("data,status,message", [
    (b"not a zip", 400, "not a zip archive"),
    (_zip({"log.txt": "x"}), 400, "no report.json"),
    (_zip({"report.json": "{}", "../outside.txt": "x"}), 400, "escapes its folder"),
])
def test_bad_archives_are_refused_by_name(tmp_path, data, status, message):
    with pytest.raises(ArchiveError, match=message) as err:
        unpack_results(data, tmp_path / "out", limit_bytes=1 << 20)
    assert err.value.status == status
    assert not (tmp_path / "outside.txt").exists()


def test_an_archive_over_the_limit_is_too_large(tmp_path):
    with pytest.raises(ArchiveError, match="too large") as err:
        unpack_results(_zip({"report.json": "{}"}), tmp_path / "out", limit_bytes=10)
    assert err.value.status == 413
