"""Safe extraction of uploaded zip and tar (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) archives.

Every entry is checked before a byte is written: absolute paths, `..` components,
symlinks, nested archives and entries that would blow past the size or
compression-ratio caps are refused and reported with a reason, and the rest of
the archive is still extracted. Nothing is ever written outside the target folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
COPY_BLOCK = 1 << 20


class ArchiveError(ValueError):
    """The archive as a whole cannot be read (not a zip, corrupt central directory, too big)."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 20 * 2**30
    max_ratio: int = 200
    max_entries: int = 2_000_000
    max_entry_bytes: int = 50 * 2**20


@dataclass
class ExtractionResult:
    extracted: list[str] = field(default_factory=list)
    # (entry name as stored, reason) for entries that were not written.
    rejected: list[tuple[str, str]] = field(default_factory=list)


def name_problem(name: str) -> str | None:
    """An entry name that may never be written (zip and tar alike)."""
    if "\x00" in name:
        return "entry name contains a NUL byte"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return "absolute path in archive entry"
    if any(part == ".." for part in PurePosixPath(normalised).parts):
        return "path traversal ('..') in archive entry"
    if normalised.lower().endswith(NESTED_ARCHIVE_SUFFIXES):
        return "nested archive refused"
    return None


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    problem = name_problem(name)
    if problem is not None and problem != "nested archive refused":
        return problem  # (a link named .zip is reported as a link, as before)
    normalised = name.replace("\\", "/")
    # Unix archivers keep the file type in the high bits; many writers leave it zero.
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        return "symbolic link in archive"
    if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
        return "special file in archive"
    if normalised.lower().endswith(NESTED_ARCHIVE_SUFFIXES):
        return "nested archive refused"
    return None


def extract_archive(
    archive_path: str | Path, target_dir: str | Path, *, limits: ArchiveLimits = ArchiveLimits()
) -> ExtractionResult:
    """Extract the regular files of a zip archive under target_dir, refusing unsafe entries.

    Raises ArchiveError when the file is not a readable zip or has too many entries;
    per-entry problems are returned in `rejected` and do not stop the extraction.
    """
    target = Path(target_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    result = ExtractionResult()
    # The format from the content, never the name (uploads are stored under a fixed name).
    if not zipfile.is_zipfile(archive_path) and _is_tar(archive_path):
        return _extract_tar(archive_path, target, limits=limits)
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"not a readable zip archive: {exc}") from exc

    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_entries:
            raise ArchiveError(
                f"archive has {len(entries)} entries, more than the limit of {limits.max_entries}"
            )
        written_total = 0
        for info in entries:
            if info.is_dir():
                continue
            problem = _entry_problem(info)
            if problem is None and info.file_size > limits.max_entry_bytes:
                problem = f"entry too large: {info.file_size} bytes > {limits.max_entry_bytes}"
            if (
                problem is None
                and info.compress_size
                and (info.file_size / info.compress_size > limits.max_ratio)
            ):
                problem = f"compression ratio above {limits.max_ratio}:1 (zip bomb?)"
            if problem is None and written_total + info.file_size > limits.max_total_bytes:
                problem = f"archive exceeds the total size cap of {limits.max_total_bytes} bytes"
            if problem is not None:
                result.rejected.append((info.filename, problem))
                continue

            relative = PurePosixPath(info.filename.replace("\\", "/"))
            destination = (target / relative).resolve()
            if not destination.is_relative_to(target):
                result.rejected.append((info.filename, "entry would be written outside the target"))
                continue
            try:
                written = _copy_entry(archive, info, destination, limit=info.file_size)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                destination.unlink(missing_ok=True)
                result.rejected.append((info.filename, f"corrupt archive entry: {exc}"))
                continue
            written_total += written
            result.extracted.append(relative.as_posix())
    return result


def _is_tar(archive_path: str | Path) -> bool:
    try:
        return tarfile.is_tarfile(archive_path)
    except (OSError, EOFError, tarfile.TarError, ValueError):
        return False


def _copy_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, *, limit: int
) -> int:
    """Stream one entry to disk, never writing more than its declared size (lying headers)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as source, open(destination, "wb") as sink:
        while True:
            block = source.read(COPY_BLOCK)
            if not block:
                break
            written += len(block)
            if written > limit:
                raise ValueError("entry is larger than its header declares")
            sink.write(block)
    os.chmod(destination, 0o644)
    return written


def remove_tree(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- tar archives ----------------------------------------------------------------------------


def _tar_member_problem(member: tarfile.TarInfo) -> str | None:
    problem = name_problem(member.name)
    if problem is not None:
        return problem
    if member.issym():
        return "symbolic link in archive"
    if member.islnk():
        return "hard link in archive"
    if not member.isfile():
        return "special file in archive"  # devices, FIFOs, contiguous files
    return None


def _extract_tar(
    archive_path: str | Path, target: Path, *, limits: ArchiveLimits
) -> ExtractionResult:
    """The tar counterpart of the zip extraction: the same refusals and caps, read as a stream
    (a compressed tar has no index); a truncated archive keeps what came before the damage.
    The compression ratio is checked on the whole: output beyond max_ratio times the
    archive's size on disk is refused."""
    result = ExtractionResult()
    packed_bytes = max(1, Path(archive_path).stat().st_size)
    try:
        archive = tarfile.open(archive_path, mode="r|*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"not a readable tar archive: {exc}") from exc
    written_total = entries = 0
    with archive:
        try:
            for member in archive:
                entries += 1
                if entries > limits.max_entries:
                    raise ArchiveError(
                        f"archive has more than the limit of {limits.max_entries} entries"
                    )
                if member.isdir():
                    continue
                problem = _tar_member_problem(member)
                if problem is None and member.size > limits.max_entry_bytes:
                    problem = f"entry too large: {member.size} bytes > {limits.max_entry_bytes}"
                if problem is None and written_total + member.size > limits.max_total_bytes:
                    problem = (
                        f"archive exceeds the total size cap of {limits.max_total_bytes} bytes"
                    )
                if problem is None and (written_total + member.size) / packed_bytes > (
                    limits.max_ratio
                ):
                    problem = f"compression ratio above {limits.max_ratio}:1 (tar bomb?)"
                if problem is not None:
                    result.rejected.append((member.name, problem))
                    continue
                relative = PurePosixPath(member.name.replace("\\", "/"))
                destination = (target / relative).resolve()
                if not destination.is_relative_to(target):
                    result.rejected.append(
                        (member.name, "entry would be written outside the target")
                    )
                    continue
                try:
                    written = _copy_tar_member(archive, member, destination)
                except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                    destination.unlink(missing_ok=True)
                    result.rejected.append((member.name, f"corrupt archive entry: {exc}"))
                    break  # a stream cannot skip past damage
                written_total += written
                result.extracted.append(relative.as_posix())
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            result.rejected.append(("[rest of archive]", f"truncated or corrupt archive: {exc}"))
    return result


def _copy_tar_member(archive: tarfile.TarFile, member: tarfile.TarInfo, destination: Path) -> int:
    source = archive.extractfile(member)
    if source is None:
        raise ValueError("entry has no data")
    destination.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with source, open(destination, "wb") as sink:
        while block := source.read(COPY_BLOCK):
            written += len(block)
            if written > member.size:
                raise ValueError("entry is larger than its header declares")
            sink.write(block)
    os.chmod(destination, 0o644)
    return written
