"""Files that are either complete or absent: atomic writes and safe zip extraction."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from opsin.core.errors import UnsafeArchiveError

__all__ = [
    "DEFAULT_MAX_EXTRACT_BYTES",
    "UnsafeArchiveError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "commit_temp_file",
    "replace_dir",
    "safe_extract_zip",
    "temp_sibling",
]

DEFAULT_MAX_EXTRACT_BYTES = 20 * 1024**3
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1024 * 1024


def _current_umask() -> int:
    # os.umask can only be read by setting it; restore at once.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_sibling(path: str | os.PathLike[str]) -> Path:
    """Create an empty temporary file next to ``path`` (same folder, so the same file system) and return it.

    Streaming writers (HDF5 files, record-by-record encoders) write there and finish with
    :func:`commit_temp_file`; code that can use a ``with`` block should prefer :func:`atomic_path`.

    Args:
        path: the final destination; its folder must exist.

    Returns:
        The temporary file's path, named ``.<name>.<random>.tmp``.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp_name)


def commit_temp_file(tmp: str | os.PathLike[str], path: str | os.PathLike[str], *, mode: int | None = None) -> Path:
    """Give a finished temporary file its permissions and rename it over ``path`` in one atomic step.

    Args:
        tmp: the complete temporary file (from :func:`temp_sibling`).
        path: the destination.
        mode: permission bits; default ``0o666`` minus the process umask, like ``open()`` (mkstemp makes 0600).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    os.chmod(tmp, mode if mode is not None else 0o666 & ~_current_umask())
    os.replace(tmp, path)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; commit it when the block succeeds.

    On an exception the temporary file is removed and ``path`` keeps its old content (or stays absent)::

        with atomic_path(out / "features.h5") as tmp:
            with h5py.File(tmp, "w") as fh:
                ...

    Args:
        path: the destination; its folder must exist.
        mode: permission bits of the new file (see :func:`commit_temp_file`).

    Yields:
        The temporary file's path (an existing, empty file).
    """
    tmp = temp_sibling(path)
    try:
        yield tmp
        commit_temp_file(tmp, path, mode=mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    The bytes go to a temporary file in the same folder (same file system), are flushed to disk, and the file is
    then renamed over ``path`` with :func:`os.replace`. On any failure the temporary file is removed and ``path``
    is left as it was.

    Args:
        path: destination file; its folder must exist.
        data: the complete new content.
        mode: permission bits of the new file; default ``0o666`` minus the process umask, like ``open()``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path, mode=mode) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, encoding: str = "utf-8", *, mode: int | None = None
) -> Path:
    """Write ``text`` atomically; see :func:`atomic_write_bytes`.

    Args:
        path: destination file; its folder must exist.
        text: the complete new content.
        encoding: text encoding.
        mode: permission bits of the new file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return atomic_write_bytes(path, text.encode(encoding), mode=mode)


def _member_parts(archive: Path, info: zipfile.ZipInfo, required_root: str | None) -> tuple[str, ...]:
    """Validate one member's name and return its path components."""
    name = info.filename
    problem = ""
    if name.startswith(("/", "\\")):
        problem = "absolute path"
    elif _DRIVE.match(name):
        problem = "drive letter"
    elif "\0" in name:
        problem = "NUL byte in name"
    parts = tuple(p for p in re.split(r"[/\\]", name) if p not in ("", "."))
    if not problem and ".." in parts:
        problem = "'..' component"
    if not problem and stat.S_ISLNK(info.external_attr >> 16):
        problem = "symbolic link"
    if not problem and not parts:
        problem = "empty name"
    if not problem and required_root is not None and parts[0] != required_root:
        problem = f"outside the required root folder {required_root!r}"
    if problem:
        msg = f"{archive}: refusing member {name!r}: {problem}"
        raise UnsafeArchiveError(msg)
    return parts


def safe_extract_zip(
    zip_path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_total_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
    required_root: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Extract a zip archive into a new folder, refusing anything that could escape it.

    Every member is checked before a byte is written: absolute paths, drive letters, ``..`` components, symbolic
    links and (with ``required_root``) members outside that top folder are refused. The declared uncompressed size
    must stay under ``max_total_bytes``, and the bytes actually written are counted too, so a lying header cannot
    fill the disk. CRCs are verified while streaming. Extraction goes to a temporary sibling of ``dest`` that is
    renamed to ``dest`` only when everything succeeded; on failure nothing is left behind.

    Args:
        zip_path: the archive.
        dest: folder to create with the archive's members inside.
        max_total_bytes: limit on the total uncompressed size.
        required_root: when given, every member must lie under this top-level folder name.
        overwrite: replace an existing ``dest`` (swapped in only after the new copy is complete).

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        UnsafeArchiveError: the archive is not a valid zip, fails a CRC, is too large or has an unsafe member.
        FileExistsError: ``dest`` exists and ``overwrite`` is false.
    """
    archive = Path(zip_path)
    target = Path(dest)
    if target.exists() and not overwrite:
        msg = f"{target} already exists; pass overwrite=True to replace it"
        raise FileExistsError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        _extract_into(archive, staging, max_total_bytes, required_root)
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def replace_dir(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move a completely built folder into place, replacing whatever ``target`` held.

    An existing ``target`` is first renamed aside and deleted only after ``staging`` took its place, so a crash
    between the two renames leaves the old copy recoverable and never loses both. Both paths must be on one file
    system (make ``staging`` a sibling of ``target``, e.g. with :func:`tempfile.mkdtemp` in the same parent).

    Args:
        staging: the finished folder.
        target: where it must end up.

    Returns:
        ``target`` as a :class:`~pathlib.Path`.
    """
    staging, target = Path(staging), Path(target)
    if os.path.lexists(target):
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target


def _extract_into(archive: Path, staging: Path, max_total_bytes: int, required_root: str | None) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        msg = f"{archive}: not a readable zip archive ({exc})"
        raise UnsafeArchiveError(msg) from exc
    with zf:
        infos = zf.infolist()
        members = [(info, _member_parts(archive, info, required_root)) for info in infos]
        declared = sum(info.file_size for info in infos)
        if declared > max_total_bytes:
            msg = f"{archive}: uncompressed size {declared} bytes exceeds the limit of {max_total_bytes} bytes"
            raise UnsafeArchiveError(msg)
        written = 0
        for info, parts in members:
            out = staging.joinpath(*parts)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > max_total_bytes:
                            msg = f"{archive}: extracted data exceeds the limit of {max_total_bytes} bytes"
                            raise UnsafeArchiveError(msg)
                        dst.write(chunk)
            except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
                msg = f"{archive}: member {info.filename!r} is corrupt ({exc})"
                raise UnsafeArchiveError(msg) from exc
