"""zoo.data: video decoding, clip sampling, datasets, transforms, synthetic data and optical flow."""
