"""Files written atomically get the mode a plain open() gives under the current umask, not mkstemp's 0600."""
import os
import stat

import pytest
import torch.nn as nn

import inflate
from inflate.atomic import atomic_path


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_has_the_mode_of_a_plain_open(tmp_path, umask):
    with open(tmp_path / "plain.bin", "wb") as f:
        f.write(b"x")
    with atomic_path(tmp_path / "atomic.bin") as tmp:
        tmp.write_bytes(b"x")
    assert _mode(tmp_path / "atomic.bin") == _mode(tmp_path / "plain.bin") == 0o666 & ~umask


def test_replacing_a_file_keeps_the_umask_mode(tmp_path, umask):
    target = tmp_path / "out.bin"
    for content in (b"first", b"second"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(content)
    assert target.read_bytes() == b"second" and _mode(target) == 0o666 & ~umask


def test_inflate_save_is_readable_by_the_group(tmp_path, umask):
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)), time_kernel=3)
    path = inflate.save(video, tmp_path / "v.safetensors")
    assert _mode(path) == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
