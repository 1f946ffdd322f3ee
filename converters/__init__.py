"""quovadis.converters: import DeepMind's released I3D TensorFlow checkpoints into safetensors."""
