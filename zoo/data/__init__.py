"""zoo.data: the one video lister (which files are videos, their output names and shards), decoding, clip sampling, datasets, transforms, synthetic data and flow storage."""
