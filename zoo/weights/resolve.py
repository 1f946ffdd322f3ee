"""Where a zoo model's weights come from: one resolver, :func:`resolve`, over these sources in this order.

1. ``weights=PATH`` given to ``zoo.load``: that file, nothing else is tried (handled by ``zoo.load``).
2. ``cache``: our cache of converted weights, ``$QUOVADIS_HOME`` or ``$HF_HOME/quovadis``
   (``cache_dir=`` overrides): ``<name>.safetensors``, filled by the release source, ``quovadis zoo fetch``
   or ``quovadis zoo build``.
3. ``release``: for the five DeepMind entries, the original kinetics-i3d release at its pinned commit
   (:mod:`zoo.weights.release`; ``QUOVADIS_KINETICS_I3D_MIRROR`` points at a copy). The index and the data shard are
   downloaded (:mod:`zoo.weights.download`), checked against the pins (index sha256 and size; shard size from the
   index's offsets and git blob id; every tensor's CRC32C as it is read), converted in memory and written
   atomically into our cache. Nothing that fails a check is cached or loaded.
4. ``hub``: a Hugging Face Hub repo, where the entry registers one (the Hugging Face cache first, then a
   download; files with a sha256 in the registry are checked).

``source="cache" | "release" | "hub"`` uses that source alone; ``"auto"`` (the default) goes down the list.
A network failure of the release falls through to the Hub; a file that fails verification never does.
A host that cannot be reached at all (:func:`zoo.weights.download.unreachable`) fails at once, without retries.
When no source gives the weights, the error starts with the cause (the first source's failure, or "no connection
to HOST" when no host could be reached) and what fixes it, then lists the sources tried.
Offline (``HF_HUB_OFFLINE=1`` or ``QUOVADIS_OFFLINE=1``) only the caches are read, and the error says what to do.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from zoo.registry import ModelEntry
from zoo.weights import hub, release
from zoo.weights.download import DownloadError, OfflineError, offline, unreachable
from zoo.weights.files import WeightsError, cached_path, quovadis_cache, sha256_of

SOURCES = ("cache", "release", "hub")


def how_to_get(entry: ModelEntry) -> str:
    if entry.variant:
        return (f"On a machine with internet, `quovadis zoo fetch {entry.name}` fills the cache at "
                f"{quovadis_cache()} (copy it, or point QUOVADIS_HOME at a shared one). Or convert DeepMind's "
                f"checkpoint yourself: `quovadis convert deepmind "
                f"kinetics-i3d/data/checkpoints/{entry.variant} -o {entry.name}.safetensors` and pass "
                f"weights='{entry.name}.safetensors', or run `quovadis zoo build path/to/kinetics-i3d` once to "
                f"fill the cache at {quovadis_cache()}.")
    return "Pass weights='path/to/model.safetensors', or connect to the Hub once so the file is cached."


def resolve(entry: ModelEntry, *, cache_dir=None, force_download: bool = False, source: str = "auto",
            quiet: bool = False) -> Path:
    """The path of ``entry``'s weights, fetching them if needed (sources and order: the module docstring).

    ``force_download`` skips the caches; ``quiet`` hides the progress bars.
    """
    if source not in ("auto",) + SOURCES:
        raise ValueError(f"source={source!r}: choose 'auto' or one of {SOURCES}")
    local = cached_path(entry, cache_dir)
    if source in ("auto", "cache") and local.is_file() and not force_download:
        return local
    if source == "cache":
        raise WeightsError(f"{entry.name}: not in our cache ({local}). {how_to_get(entry)}")
    failures: list[tuple[str, str, Exception]] = []  # (source, host, error), in the order tried
    if source in ("auto", "release"):
        if entry.variant is None:
            if source == "release":
                raise WeightsError(f"{entry.name} is not one of DeepMind's released checkpoints; "
                                   f"use source='auto' or 'hub'")
        else:
            try:
                return fetch_release(entry, cache_dir=cache_dir, quiet=quiet, force=force_download)
            except OfflineError:
                if source == "release" or entry.hf_repo is None:
                    raise WeightsError(_offline_message(entry, local)) from None
            except DownloadError as e:
                failures.append(("DeepMind's release", urlsplit(release.base_url()).netloc, e))
                if source == "release" or entry.hf_repo is None:
                    raise _no_weights(entry, local, failures) from e
    if entry.hf_repo is None:
        raise WeightsError(f"{entry.name}: no local weights at {local} and no Hub repo. {how_to_get(entry)}")
    return _from_hub(entry, cache_dir, force_download, local, failures)


def _offline_message(entry: ModelEntry, local: Path) -> str:
    return (f"{entry.name}: no cached weights at {local}, and offline mode is on (HF_HUB_OFFLINE is set, or "
            f"QUOVADIS_OFFLINE=1), so DeepMind's release cannot be downloaded. {how_to_get(entry)}")


def _no_weights(entry: ModelEntry, local: Path, failures: list[tuple[str, str, Exception]]) -> WeightsError:
    """The error when no source gave ``entry``'s weights: the cause first, then what fixes it, then the sources."""
    if all(unreachable(error) for _, _, error in failures):
        hosts = " or ".join(dict.fromkeys(host for _, host, _ in failures))
        fix = (f"To fix: on a machine with internet, run `quovadis zoo fetch {entry.name}` and copy {local.parent} "
               f"here (or point QUOVADIS_HOME at a shared copy)")
        if entry.variant:
            fix += f", or set {release.MIRROR_ENV} to a reachable copy of DeepMind's release"
        tried = "; ".join(f"{name}: {error}" for name, _, error in failures)
        return WeightsError(f"{entry.name}: no connection to {hosts} (no network, or a wrong address), and no "
                            f"cached weights at {local}. {fix}. Sources tried: {tried}.")
    (_, _, first), rest = failures[0], failures[1:]
    also = f" Also tried: {'; '.join(f'{name}: {error}' for name, _, error in rest)}." if rest else ""
    return WeightsError(f"{entry.name}: {first} {how_to_get(entry)}{also}")


def fetch_release(entry: ModelEntry, *, cache_dir=None, quiet: bool = False, force: bool = False) -> Path:
    """Download ``entry``'s checkpoint from DeepMind's release, verify it, convert it into our cache.

    A file lock makes concurrent callers (processes or threads) share one download and conversion.
    The raw release files are kept under ``<cache>/kinetics-i3d/<commit>/<variant>/`` only until the
    conversion succeeded: an interrupted run resumes from them.
    """
    import contextlib
    import shutil

    from filelock import FileLock

    from converters.tf_bundle import CheckpointError
    from zoo.weights.deepmind import convert_deepmind

    local = cached_path(entry, cache_dir)
    local.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(local) + ".lock"):
        if local.is_file() and not force:  # another process fetched it while we waited
            return local
        folder = quovadis_cache(cache_dir) / "kinetics-i3d" / release.commit()[:12] / entry.variant
        try:
            prefix = release.fetch_checkpoint(entry.variant, folder, quiet=quiet)
            convert_deepmind(prefix, local, variant=entry.variant)
        except (release.VerificationError, CheckpointError) as e:
            shutil.rmtree(folder, ignore_errors=True)  # a file that passed the pins but not the reader: start over
            raise WeightsError(f"{entry.name}: {e}") from e
        shutil.rmtree(folder, ignore_errors=True)
        for parent in (folder.parent, folder.parent.parent):  # kinetics-i3d/<commit>/, when empty
            with contextlib.suppress(OSError):
                parent.rmdir()
    return local


def _from_hub(entry: ModelEntry, cache_dir, force_download: bool, local: Path,
              failures: list[tuple[str, str, Exception]]) -> Path:
    from huggingface_hub import constants, try_to_load_from_cache

    hf_cache = None if cache_dir is None else str(cache_dir)
    if not force_download:
        cached = try_to_load_from_cache(entry.hf_repo, entry.filename, cache_dir=hf_cache)
        if isinstance(cached, str):
            path = Path(cached)
            if entry.sha256 is None or sha256_of(path) == entry.sha256:
                return path
            if offline():
                raise WeightsError(
                    f"{entry.name}: the cached file {path} is corrupt (sha256 {sha256_of(path)[:12]}..., "
                    f"expected {entry.sha256[:12]}...) and HF_HUB_OFFLINE is set, so it cannot be fetched again. "
                    f"Delete it and go online, or pass weights=. {how_to_get(entry)}")
            force_download = True
    if offline():
        raise WeightsError(_offline_message(entry, local))
    try:
        path = hub.fetch_file(entry.hf_repo, entry.filename, cache_dir=hf_cache, force_download=force_download)
    except WeightsError as e:
        failures.append(("the Hub", urlsplit(constants.ENDPOINT).netloc, e))
        raise _no_weights(entry, local, failures) from e
    if entry.sha256 is not None:
        got = sha256_of(path)
        if got != entry.sha256:
            raise WeightsError(f"{entry.name}: downloaded {path} has sha256 {got}, but the registry records "
                               f"{entry.sha256}; the Hub file is not the one we published. Do not use it.")
    return path
