"""The reference FVD pipeline in TensorFlow, as google-research's ``frechet_video_distance`` runs it:

    tf.compat.v1.image.resize_bilinear(frames, [224, 224])  ->  2. * x / 255. - 1  ->  I3D (rgb_scratch)
    "Logits" (RGB/inception_i3d/Mean:0)  ->  tfgan's frechet_classifier_distance_from_activations

The network is DeepMind's graph built with TensorFlow ops (tests/tf_i3d_reference.py), its variables
loaded from an i3d_inception_k400_rgb safetensors file (our state-dict names mapped back to TF names, conv
kernels transposed back to [t, h, w, in, out]). The Fréchet distance is tfgan's code written in numpy.
Run as a script in its own process, so TensorFlow and PyTorch never share one:

    python tests/tf_fvd_reference.py WEIGHTS.safetensors OUT_DIR VIDEOS.npy [VIDEOS.npy ...] [--batch B]

writes ``OUT_DIR/features_<i>.npy`` (N, 400) for each uint8 ``(N, T, H, W, 3)`` .npy input (or .npz of
``arr_0, arr_1, ...`` videos ``(T, H, W, 3)`` of any sizes), ``OUT_DIR/fvd.npy``
(FVD between the first two inputs) and ``OUT_DIR/seconds.npy`` (preprocessing + network time per input).
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------------- tfgan, in numpy
def _symmetric_matrix_square_root(mat, eps=1e-10):
    u, s, vh = np.linalg.svd(mat)           # TF: s, u, v = svd(mat); mat = u diag(s) v^T, v^T = vh
    si = np.where(s < eps, s, np.sqrt(s))   # sqrt is unstable around 0: keep s there
    return (u @ np.diag(si)) @ vh


def trace_sqrt_product(sigma, sigma_v):
    sqrt_sigma = _symmetric_matrix_square_root(sigma)
    sqrt_a_sigmav_a = sqrt_sigma @ (sigma_v @ sqrt_sigma)
    return np.trace(_symmetric_matrix_square_root(sqrt_a_sigmav_a))


def frechet_classifier_distance_from_activations(activations1, activations2):
    a1, a2 = np.asarray(activations1, np.float64), np.asarray(activations2, np.float64)
    m, m_w = a1.mean(0), a2.mean(0)
    sigma = (a1 - m).T @ (a1 - m) / (a1.shape[0] - 1)
    sigma_w = (a2 - m_w).T @ (a2 - m_w) / (a2.shape[0] - 1)
    trace = np.trace(sigma + sigma_w) - 2.0 * trace_sqrt_product(sigma, sigma_w)
    mean = np.sum((m - m_w) ** 2)
    return trace + mean


# ---------------------------------------------------------------------------- the TF pipeline
def build_pipeline(tf, weights_path):
    """(session, input placeholder (N, T, H, W, 3) uint8, embedding tensor (N, 400))."""
    from safetensors.numpy import load_file

    from converters.deepmind_names import tf_to_torch
    from tf_i3d_reference import build

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        videos = v1.placeholder(tf.uint8, [None, None, None, None, 3])
        shape = tf.shape(videos)
        frames = tf.reshape(videos, tf.concat([[-1], shape[2:]], 0))
        resized = v1.image.resize_bilinear(frames, [224, 224])   # align_corners=False, half_pixel_centers=False
        clips = tf.reshape(resized, [shape[0], shape[1], 224, 224, 3])
        scaled = 2. * tf.cast(clips, tf.float32) / 255. - 1
        with v1.variable_scope("RGB"):
            logits = build(tf, scaled, 400, False, np.random.default_rng(0))
        state = load_file(str(weights_path))
        sess = v1.Session(graph=graph)
        sess.run(v1.global_variables_initializer())
        used = set()
        for var in v1.global_variables():
            key = tf_to_torch(var.op.name)
            value = state[key]
            if value.ndim == 5:
                value = value.transpose(2, 3, 4, 1, 0)          # [out, in, t, h, w] -> [t, h, w, in, out]
            var.load(value.reshape(var.shape.as_list()), sess)
            used.add(key)
        if used != set(state):
            raise SystemExit(f"weights file tensors not used by the TF graph: {sorted(set(state) - used)[:5]}")
    return sess, videos, logits


def main(argv):
    import tensorflow as tf
    batch = 8
    if "--batch" in argv:
        i = argv.index("--batch")
        batch = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    weights, out_dir, *inputs = argv
    out_dir = Path(out_dir)
    sess, videos, logits = build_pipeline(tf, weights)
    feats, seconds = [], []
    for i, path in enumerate(inputs):
        if path.endswith(".npz"):  # videos of different sizes: arr_0, arr_1, ... each (T, H, W, 3), one at a time
            with np.load(path) as z:
                parts = [z[f"arr_{j}"][None] for j in range(len(z.files))]
        else:
            arr = np.load(path)
            parts = [arr[j:j + batch] for j in range(0, len(arr), batch)]
        start = time.perf_counter()
        f = np.concatenate([sess.run(logits, {videos: p}) for p in parts])
        seconds.append(time.perf_counter() - start)
        np.save(out_dir / f"features_{i}.npy", f)
        feats.append(f)
    if len(feats) >= 2:
        np.save(out_dir / "fvd.npy", np.float64(frechet_classifier_distance_from_activations(feats[0], feats[1])))
    np.save(out_dir / "seconds.npy", np.asarray(seconds))


if __name__ == "__main__":
    main(sys.argv[1:])
