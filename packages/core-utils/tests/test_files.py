from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from opsin.core import UnsafeArchiveError, atomic_write_bytes, atomic_write_text, safe_extract_zip


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new content")
    assert target.read_text() == "new content"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_respects_umask_and_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        plain = atomic_write_bytes(tmp_path / "p.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644
    secret = atomic_write_bytes(tmp_path / "s.bin", b"k", mode=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


class Boom(bytes):
    pass


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("precious")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extracts_good_archive(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"job/job.json": b"{}", "job/sub/a.png": b"\x89PNG", "job/empty/": b""})
    out = safe_extract_zip(archive, tmp_path / "out", required_root="job")
    assert (out / "job" / "job.json").read_bytes() == b"{}"
    assert (out / "job" / "sub" / "a.png").read_bytes() == b"\x89PNG"
    assert (out / "job" / "empty").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.zip", "out"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd", "absolute path"),
        ("\\windows\\x", "absolute path"),
        ("C:/x.txt", "drive letter"),
        ("job/../../evil.txt", "'..' component"),
        ("other/x.txt", "outside the required root"),
    ],
)
def test_refuses_unsafe_members(tmp_path: Path, name: str, reason: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {"job/ok.txt": b"ok", name: b"x"})
    with pytest.raises(UnsafeArchiveError, match=reason) as info:
        safe_extract_zip(archive, tmp_path / "out", required_root="job")
    assert "bad.zip" in str(info.value)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]


def test_refuses_symlink_members(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("job/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract_zip(archive, tmp_path / "out")


def test_refuses_oversize_archives(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", {"a.bin": b"\0" * 10_000})
    with pytest.raises(UnsafeArchiveError, match="exceeds the limit"):
        safe_extract_zip(archive, tmp_path / "out", max_total_bytes=9_999)
    assert not (tmp_path / "out").exists()


def test_detects_lying_size_header(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "lie.zip", {"a.bin": b"\0" * 10_000})
    data = bytearray(archive.read_bytes())
    # Rewrite the declared uncompressed size (local header and central directory) to 10 bytes.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        data[pos + offset : pos + offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError):
        safe_extract_zip(archive, tmp_path / "out", max_total_bytes=1_000)
    assert not (tmp_path / "out").exists()


def test_detects_crc_corruption(tmp_path: Path) -> None:
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"hello world, hello world")
    data = bytearray(archive.read_bytes())
    pos = data.find(b"hello world")
    data[pos] = ord("j")
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match="corrupt"):
        safe_extract_zip(archive, tmp_path / "out")


def test_not_a_zip(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip")
    with pytest.raises(UnsafeArchiveError, match=r"junk\.zip: not a readable zip"):
        safe_extract_zip(junk, tmp_path / "out")


def test_existing_destination_needs_overwrite(tmp_path: Path) -> None:
    first = _zip(tmp_path / "1.zip", {"v.txt": b"one"})
    second = _zip(tmp_path / "2.zip", {"v.txt": b"two"})
    safe_extract_zip(first, tmp_path / "out")
    with pytest.raises(FileExistsError):
        safe_extract_zip(second, tmp_path / "out")
    assert (tmp_path / "out" / "v.txt").read_text() == "one"
    safe_extract_zip(second, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "v.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.zip", "2.zip", "out"]


def test_failed_overwrite_keeps_previous_copy(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", {"v.txt": b"one"})
    bad = _zip(tmp_path / "bad.zip", {"../v.txt": b"two"})
    safe_extract_zip(good, tmp_path / "out")
    with pytest.raises(UnsafeArchiveError):
        safe_extract_zip(bad, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "v.txt").read_text() == "one"


def test_atomic_path_commits_on_success_and_cleans_on_failure(tmp_path: Path) -> None:
    from opsin.core import atomic_path

    target = tmp_path / "f.h5"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".f.h5.")
        tmp.write_bytes(b"v1")
    assert target.read_bytes() == b"v1"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"v1"
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_streaming_writers_commit_with_normal_permissions(tmp_path: Path) -> None:
    from opsin.core import commit_temp_file, temp_sibling

    target = tmp_path / "events.dat"
    tmp = temp_sibling(target)
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
    with open(tmp, "ab") as handle:
        handle.write(b"abc")
    old = os.umask(0o022)
    try:
        commit_temp_file(tmp, target)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"abc"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert not tmp.exists()


def test_replace_dir_swaps_in_a_finished_folder_and_drops_the_old_one(tmp_path: Path) -> None:
    from opsin.core import replace_dir

    target = tmp_path / "data"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging = tmp_path / ".data.staging"
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    assert replace_dir(staging, target) == target
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert not staging.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
    fresh = tmp_path / ".fresh"
    fresh.mkdir()
    replace_dir(fresh, tmp_path / "other")
    assert (tmp_path / "other").is_dir()
