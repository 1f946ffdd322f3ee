"""Write a TF1 SavedModel laid out as TF-Hub's ``deepmind/i3d-kinetics-400/1`` module, with TensorFlow itself,
from a checkpoint (``saved_model.pb`` + ``variables/variables.{index,data-00000-of-00001}``, names unchanged).
Run as a script in a separate process so TensorFlow and PyTorch never share one:

    python tests/tf_hub_module.py CHECKPOINT_PREFIX OUT_DIR
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(prefix, out):
    import tensorflow as tf
    v1 = tf.compat.v1
    v1.disable_eager_execution()
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    graph = tf.Graph()
    with graph.as_default():
        variables = {n: v1.get_variable(n, shape=shapes[n], initializer=v1.zeros_initializer()) for n in sorted(shapes)}
        v1.placeholder(tf.float32, [None, None, None, None, 3], name="rgb_input")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for name, var in variables.items():
                var.load(reader.get_tensor(name), sess)
            builder = v1.saved_model.Builder(out)
            builder.add_meta_graph_and_variables(sess, ["serve"])
            builder.save()


if __name__ == "__main__":
    main(*sys.argv[1:])
