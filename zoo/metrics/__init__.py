"""Numbers computed from videos: FVD (with the TF1 resize it needs) and clip features."""
