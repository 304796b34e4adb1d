"""Data set layout (TAU 2022 Mobile), audio loading and device impulse responses."""

from asc_edge.data.audio import AudioStats, load_audio, resample
from asc_edge.data.dirs import convolve_dir, load_dirs
from asc_edge.data.tau import Clip, TauDataset, find_split_file, load_split, open_dataset

__all__ = [
    "AudioStats", "Clip", "TauDataset", "convolve_dir", "find_split_file", "load_audio",
    "load_dirs", "load_split", "open_dataset", "resample",
]
