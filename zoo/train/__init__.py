"""zoo.train: the two-stream I3D train / fine-tune / evaluate harness (one process, or torchrun)."""
