"""Optical flow for a folder of videos: the OpenCV extractor, the batched PyTorch TV-L1 and its extractor, and the plan and frames they share (videos.py)."""
