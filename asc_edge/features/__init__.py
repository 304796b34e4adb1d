"""Log-mel frontend (DCASE 2024 Task 1 baseline settings), presets and the on-disk feature cache."""

from asc_edge.features.cache import FeatureCache
from asc_edge.features.config import PRESETS, FrontendConfig, get_frontend
from asc_edge.features.logmel import LogMel, hann_window, log_mel, mel_filterbank, sparse_mel

__all__ = [
    "PRESETS", "FeatureCache", "FrontendConfig", "LogMel", "get_frontend", "hann_window",
    "log_mel", "mel_filterbank", "sparse_mel",
]
