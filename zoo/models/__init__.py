"""Networks: the I3D port, the two-stream pair, the fused inference runner and the one architecture builder."""
