"""quovadis.converters: read and write the file formats of published checkpoints (TF bundles, SSTable, protobuf wire, Flax pickle, TF-Hub layout); imports nothing from zoo."""
