"""Check :class:`converters.tf_bundle.BundleReader` against TensorFlow's own checkpoint reader.

Reading a checkpoint never needs TensorFlow; this cross-check does (``pip install tensorflow-cpu``). It lives
apart from the reader so that the reader stays TensorFlow-free.
"""
from __future__ import annotations

import os

import numpy as np

from converters.tf_bundle import BundleReader, CheckpointError

__all__ = ["compare_with_tensorflow"]


def compare_with_tensorflow(path: str | os.PathLike, atol: float = 0) -> list[str]:
    """Check that every tensor this reader returns equals what TensorFlow's own reader returns.

    Returns the names compared; raises CheckpointError listing any tensor that differs (or that only one
    side has), and ImportError when TensorFlow is not installed.
    """
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ImportError("compare_with_tensorflow needs TensorFlow: pip install tensorflow-cpu "
                          "(reading checkpoints with BundleReader does not)") from e
    problems = []
    with BundleReader(path) as ours:
        theirs = tf.train.load_checkpoint(str(ours.prefix))
        tf_names = set(theirs.get_variable_to_shape_map())
        if tf_names != set(ours.names()):
            problems.append(f"names differ: only TensorFlow has {sorted(tf_names - set(ours.names()))}, "
                            f"only this reader has {sorted(set(ours.names()) - tf_names)}")
        for name in sorted(tf_names & set(ours.names())):
            a = ours.read(name)
            b = np.asarray(theirs.get_tensor(name))
            if ours.info(name).is_a("bfloat16"):
                b = b.astype(np.float32)
            if a.shape != b.shape:
                problems.append(f"{name}: shape {a.shape} vs TensorFlow's {b.shape}")
            elif a.dtype == object or b.dtype.kind in "SOU":
                if a.tolist() != b.astype(object).tolist():
                    problems.append(f"{name}: strings differ")
            elif a.dtype != b.dtype:
                problems.append(f"{name}: dtype {a.dtype} vs TensorFlow's {b.dtype}")
            elif atol == 0 or a.dtype.kind not in "fc":
                if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                    problems.append(f"{name}: values differ")
            elif not np.allclose(a, b, rtol=0, atol=atol, equal_nan=True):
                problems.append(f"{name}: values differ by up to {np.nanmax(np.abs(a - b))} > atol={atol}")
        if problems:
            raise CheckpointError(f"{ours.prefix}: this reader and TensorFlow disagree on "
                                  f"{len(problems)} tensor(s): " + "; ".join(problems))
        return sorted(tf_names)
