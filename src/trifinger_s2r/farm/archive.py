"""Results travel between worker and user as one zip of a job's results folder."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path


class ArchiveError(ValueError):
    """A results archive the server refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def zip_folder(folder: Path) -> bytes:
    """Every file under folder, zipped with paths relative to it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def unpack_results(data: bytes, target: Path, limit_bytes: int) -> dict:
    """Extract a worker's results archive into target (every member's path checked) and return its report.json."""
    if len(data) > limit_bytes:
        raise ArchiveError(413, "results archive too large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ArchiveError(400, "results are not a zip archive") from None
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    root = target.resolve()
    for member in archive.infolist():
        path = (target / member.filename).resolve()
        if root not in path.parents:
            raise ArchiveError(400, f"results archive member {member.filename!r} escapes its folder")
    archive.extractall(target)
    report = target / "report.json"
    if not report.is_file():
        raise ArchiveError(400, "results archive has no report.json")
    return json.loads(report.read_text())
