"""DeepMind's I3D built in TensorFlow itself (tf.nn.conv3d / max_pool3d with "SAME" padding), under the
released checkpoints' variable names, saved with TensorFlow's own Saver. Run as a script in a separate
process so TensorFlow and PyTorch never share one:

    python tests/tf_i3d_reference.py OUT_DIR VARIANT INPUTS.npy [INPUTS.npy ...]

writes ``OUT_DIR/model.ckpt.*`` (random weights, laid out as released), and for each input
``(B, T, H, W, C)`` array the TF "Logits" (averaged over time) to ``OUT_DIR/logits_<i>.npy``.

    python tests/tf_i3d_reference.py OUT_DIR VARIANT --restore PREFIX INPUTS.npy [...]

restores the weights from the checkpoint ``PREFIX`` (e.g. real released weights) instead, and saves none.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
VARIANTS = {  # scope, in channels, classes, BN tensors [1,1,1,1,C], Momentum slots
    "rgb_scratch": ("RGB", 3, 400, False, False), "rgb_imagenet": ("RGB", 3, 400, False, False),
    "flow_scratch": ("Flow", 2, 400, False, False), "flow_imagenet": ("Flow", 2, 400, False, False),
    "rgb_scratch_kin600": (None, 3, 600, True, True),
}


def build(tf, x, classes, bn5d, rng, scoped=True):
    v1 = tf.compat.v1

    def var(name, shape, kind="w"):
        if kind == "var":
            value = rng.uniform(0.5, 1.5, shape)
        elif kind == "w":
            fan_in = np.prod(shape[:-1])
            value = rng.normal(0, 1.0 / np.sqrt(fan_in), shape)
        else:
            value = rng.normal(0, 0.2, shape)
        return v1.get_variable(name, initializer=value.astype(np.float32))

    def unit(x, name, cout, k=(1, 1, 1), s=(1, 1, 1), bn=True, relu=True, bias=False):
        cin = x.shape[-1]
        with v1.variable_scope(name):
            with v1.variable_scope("conv_3d"):
                x = tf.nn.conv3d(x, var("w", list(k) + [cin, cout]), [1, *s, 1], "SAME")
                if bias:
                    x = x + var("b", [cout], "b")
            if bn:
                with v1.variable_scope("batch_norm"):
                    shape = [1, 1, 1, 1, cout] if bn5d else [cout]
                    beta, mean, variance = var("beta", shape, "b"), var("moving_mean", shape, "b"), \
                        var("moving_variance", shape, "var")
                    x = tf.nn.batch_normalization(x, mean, variance, beta, None, 1e-3)
            return tf.nn.relu(x) if relu else x

    def pool(x, name, k, s):
        return tf.nn.max_pool3d(x, [1, *k, 1], [1, *s, 1], "SAME", name=name)

    import contextlib
    with v1.variable_scope("inception_i3d") if scoped else contextlib.nullcontext():
        x = unit(x, "Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2))
        x = pool(x, "MaxPool3d_2a_3x3", (1, 3, 3), (1, 2, 2))
        x = unit(x, "Conv3d_2b_1x1", 64)
        x = unit(x, "Conv3d_2c_3x3", 192, (3, 3, 3))
        x = pool(x, "MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2))
        for name in MIXED:
            if name == "Mixed_4b":
                x = pool(x, "MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                x = pool(x, "MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2))
            b0, b1a, b1b, b2a, b2b, b3 = MIXED[name]
            with v1.variable_scope(name):
                with v1.variable_scope("Branch_0"):
                    br0 = unit(x, "Conv3d_0a_1x1", b0)
                with v1.variable_scope("Branch_1"):
                    br1 = unit(unit(x, "Conv3d_0a_1x1", b1a), "Conv3d_0b_3x3", b1b, (3, 3, 3))
                with v1.variable_scope("Branch_2"):
                    conv = "Conv3d_0a_3x3" if name == "Mixed_5b" else "Conv3d_0b_3x3"
                    br2 = unit(unit(x, "Conv3d_0a_1x1", b2a), conv, b2b, (3, 3, 3))
                with v1.variable_scope("Branch_3"):
                    br3 = unit(pool(x, "MaxPool3d_0a_3x3", (3, 3, 3), (1, 1, 1)), "Conv3d_0b_1x1", b3)
                x = tf.concat([br0, br1, br2, br3], 4)
        with v1.variable_scope("Logits"):
            x = tf.nn.avg_pool3d(x, [1, 2, 7, 7, 1], [1, 1, 1, 1, 1], "VALID")
            x = unit(x, "Conv3d_0c_1x1", classes, bn=False, relu=False, bias=True)
            x = tf.reduce_mean(x, axis=[2, 3])  # DeepMind squeezes the 1x1 spatial dims at 224x224
        return tf.reduce_mean(x, axis=1)


def main(out_dir, variant, *inputs):
    import tensorflow as tf
    restore = None
    if inputs[:1] == ("--restore",):
        restore, inputs = inputs[1], inputs[2:]
    scope, cin, classes, bn5d, momentum = VARIANTS[variant]
    v1 = tf.compat.v1
    v1.disable_eager_execution()
    rng = np.random.default_rng(abs(hash(variant)) % 2**32)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, None, None, None, cin])
        if scope:
            with v1.variable_scope(scope):
                logits = build(tf, x, classes, bn5d, rng)
        else:
            logits = build(tf, x, classes, bn5d, rng, scoped=False)  # kin600: no scope at all
        model_vars = v1.global_variables()
        if momentum:  # optimizer slots the kin600 release carries
            for v in list(model_vars):
                if "/conv_3d/" in v.name or "/beta" in v.name:
                    v1.get_variable(v.name.split(":")[0] + "/Momentum", initializer=tf.zeros_like(v.initial_value))
        saver = v1.train.Saver(v1.global_variables())
        with v1.Session(graph=graph) as sess:
            if restore:
                saver.restore(sess, restore)
            else:
                sess.run(v1.global_variables_initializer())
                saver.save(sess, os.path.join(out_dir, "model.ckpt"), write_meta_graph=False, write_state=False)
            for i, path in enumerate(inputs):
                np.save(os.path.join(out_dir, f"logits_{i}.npy"), sess.run(logits, {x: np.load(path)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
