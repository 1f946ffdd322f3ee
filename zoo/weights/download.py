"""Download one file over HTTP the way ``huggingface_hub`` does, with a check before the file is kept.

:func:`download` writes ``DEST.incomplete`` first and renames it to ``DEST`` only once it is complete and the
caller's ``verify`` accepts it; a file that fails is deleted, so ``DEST`` exists only when it passed.

* **Client:** ``huggingface_hub``'s shared ``httpx`` session (``get_session()``), so proxies
  (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), certificates and a client factory set with
  ``huggingface_hub.set_client_factory`` apply; no second HTTP library.
* **Progress:** a tqdm bar with bytes and speed on stderr; silent when stderr is not a TTY, with
  ``quiet=True``, or with ``HF_HUB_DISABLE_PROGRESS_BARS=1``.
* **Resume:** an interrupted download (dropped connection, timeout, Ctrl-C, a killed process) leaves
  ``DEST.incomplete``; the next try, in this call or a later one, asks only for the rest with
  ``Range: bytes=N-``. A server that ignores the range (200 instead of 206) is read from the start again.
* **Lock:** ``DEST.lock`` (``filelock``): two processes that want the same file make one download; the second
  waits and then finds ``DEST``.
* **Timeouts and retries:** ``timeout`` seconds to connect and between two reads (default
  ``HF_HUB_DOWNLOAD_TIMEOUT``, 10 s); network errors, 408/429/5xx are retried ``retries`` times with
  exponential backoff (1, 2, 4, 8 s); the count starts again whenever bytes arrived. 404 and other 4xx fail
  at once, and so does a host that cannot be reached at all (:func:`unreachable`: its name does not resolve,
  the connection is refused, no route), with :class:`UnreachableError`. ``backoff`` scales the waits.
* **Offline:** ``HF_HUB_OFFLINE=1`` or ``QUOVADIS_OFFLINE=1`` make every download fail with :class:`OfflineError`
  before any connection is tried.

A ``file://`` URL (or a plain path) is copied instead: a mirror on a shared file system.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.error import URLError
from urllib.parse import unquote, urlsplit

OFFLINE_ENV = "QUOVADIS_OFFLINE"
RETRY_STATUS = (408, 429, 500, 502, 503, 504)


class DownloadError(OSError):
    """A file that could not be downloaded; the message names the URL and what to do."""


class OfflineError(DownloadError):
    """A download was needed while offline mode is on."""


class UnreachableError(DownloadError):
    """The host cannot be reached at all (see :func:`unreachable`); nothing was retried."""


NO_ROUTE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED)


def unreachable(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, says that the host cannot be reached at all: its name
    does not resolve (``socket.gaierror``), the connection was refused, or there is no route to it (also inside a
    urllib ``URLError``). Retrying does not help there: no network, or a wrong URL. Timeouts, resets and 5xx
    answers are not counted: they may pass."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (socket.gaierror, ConnectionRefusedError)) or (
                isinstance(error, OSError) and error.errno in NO_ROUTE):
            return True
        if isinstance(error, URLError) and isinstance(error.reason, BaseException):
            error = error.reason
            continue
        error = error.__cause__ or error.__context__
    return False


def offline() -> bool:
    """Whether ``QUOVADIS_OFFLINE`` or ``HF_HUB_OFFLINE`` asks for no network access."""
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    from huggingface_hub import constants
    return bool(constants.is_offline_mode())


def _progress(total: int | None, initial: int, desc: str, quiet: bool):
    from huggingface_hub.utils import are_progress_bars_disabled
    from tqdm.auto import tqdm
    disable = True if quiet or are_progress_bars_disabled() else None  # None: off when stderr is not a TTY
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=disable, file=sys.stderr, dynamic_ncols=True, leave=False)


def _local_source(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):  # a path (C:\ on Windows)
        return Path(url)
    return None


def _get(url: str, part: Path, *, expected_size: int | None, timeout: float, retries: int, backoff: float,
         desc: str, quiet: bool) -> None:
    """Fill ``part`` with the file at ``url``, resuming from what ``part`` already holds."""
    from huggingface_hub.utils import get_session

    session = get_session()
    httpx = sys.modules[type(session).__module__.split(".")[0]]  # httpx (huggingface_hub 1.x) or httpx2 (2.x)
    if not hasattr(httpx, "TransportError"):
        raise ImportError(f"huggingface_hub's session is a {type(session).__module__} client; quovadis needs "
                          "huggingface_hub>=1.0 (httpx): pip install -U huggingface_hub")
    failures, wait = 0, backoff
    while True:
        have = part.stat().st_size if part.exists() else 0
        if expected_size is not None and have > expected_size:
            part.unlink()  # more than the file can hold: start again
            have = 0
        if expected_size is not None and have == expected_size and have > 0:
            return
        headers = {"Accept-Encoding": "identity"}  # byte ranges and Content-Length count the file's own bytes
        if have:
            headers["Range"] = f"bytes={have}-"
        received = 0
        try:
            with session.stream("GET", url, headers=headers, follow_redirects=True,
                                timeout=httpx.Timeout(timeout, connect=timeout)) as response:
                status = response.status_code
                if status == 416 and have:  # nothing after byte `have`: the file is complete (size is checked later)
                    return
                if status in RETRY_STATUS:
                    raise httpx.TransportError(f"HTTP {status} {response.reason_phrase}")
                if status >= 400:
                    hint = (" The file is not there: check the URL (a mirror set with QUOVADIS_KINETICS_I3D_MIRROR "
                            "must hold the release's tree at the pinned commit)." if status == 404 else "")
                    raise DownloadError(f"could not download {url}: HTTP {status} {response.reason_phrase}.{hint}")
                mode = "ab"
                if have and status != 206:  # the server ignored the Range header: take the whole file again
                    mode, have = "wb", 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length is not None else expected_size
                with open(part, mode) as f, _progress(total, have, desc, quiet) as bar:
                    for chunk in response.iter_bytes():  # as it arrives: a dropped connection loses nothing
                        f.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if length is not None and received < int(length):
                    raise httpx.RemoteProtocolError(f"connection closed after {received} of {length} bytes")
            return
        except httpx.TransportError as e:  # network errors, timeouts, dropped connections, retryable statuses
            if unreachable(e):
                raise UnreachableError(f"could not download {url}: {urlsplit(url).netloc} cannot be reached "
                                       f"({type(e).__name__}: {e}); not retried") from e
            if received:
                failures, wait = 0, backoff  # progress was made: the retry budget starts again
            failures += 1
            if failures > retries:
                have = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"could not download {url} after {retries} retries ({type(e).__name__}: {e}). {have} bytes are "
                    f"kept in {part}; run the same command again to resume, check the network or proxy "
                    f"(HTTPS_PROXY), or set QUOVADIS_KINETICS_I3D_MIRROR to a reachable copy") from e
            time.sleep(wait)
            wait = min(wait * 2, 8 * backoff)


def download(url: str, dest: str | os.PathLike, *, expected_size: int | None = None,
             verify: Callable[[Path], None] | None = None, quiet: bool = False, timeout: float | None = None,
             retries: int = 5, backoff: float = 1.0, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring) and return ``dest``.

    ``verify(path)`` is called on the complete ``.incomplete`` file and should raise if it is not the expected
    file (size included); the file is then deleted and the error propagates. Without ``verify``, a size other
    than ``expected_size`` is refused. ``expected_size`` also lets a resume stop early. An existing ``dest``
    is returned as it is.
    """
    from filelock import FileLock

    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".incomplete")
    with FileLock(str(dest.with_name(dest.name + ".lock"))):
        if dest.is_file():  # another process finished it while we waited
            return dest
        source = _local_source(url)
        if source is None and offline():
            raise OfflineError(f"{dest.name} is needed from {url}, but offline mode is on ({OFFLINE_ENV} or "
                               f"HF_HUB_OFFLINE). Unset it, or fetch the file on a machine with internet")
        if timeout is None:
            from huggingface_hub import constants
            timeout = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
        if source is not None:
            if not source.is_file():
                raise DownloadError(f"could not copy {source}: no such file (from {url})")
            shutil.copyfile(source, part)
        else:
            _get(url, part, expected_size=expected_size, timeout=timeout, retries=retries, backoff=backoff,
                 desc=desc or dest.name, quiet=quiet)
        try:
            if verify is None and expected_size is not None and part.stat().st_size != expected_size:
                raise DownloadError(f"{url}: downloaded {part.stat().st_size} bytes, expected {expected_size}. "
                                    "Nothing was kept; run the command again")
            if verify is not None:
                verify(part)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise
        os.replace(part, dest)
    return dest
