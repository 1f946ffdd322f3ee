"""Numbers computed from videos: FVD (with the TF1 resize it needs), its statistics, KVD, and clip features.

``zoo.metrics.FVD`` is the metric object for training loops (:mod:`zoo.metrics.fvd_metric`)."""


def __getattr__(name):
    if name == "FVD":  # imported on first use: `import zoo.metrics.tf_resize` stays light
        from zoo.metrics.fvd_metric import FVD
        return FVD
    raise AttributeError(f"module 'zoo.metrics' has no attribute {name!r}")
