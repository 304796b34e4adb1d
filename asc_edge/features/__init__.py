"""Log-mel frontend (DCASE 2024 Task 1 baseline settings), presets, the on-disk feature cache and a
split's features as model-ready arrays."""

from asc_edge.features.cache import FeatureCache, default_cache_dir
from asc_edge.features.config import PRESETS, FrontendConfig, get_frontend
from asc_edge.features.logmel import LogMel, hann_window, log_mel, mel_filterbank, sparse_mel
from asc_edge.features.splits import SplitData, load_split_data, load_split_waveforms

__all__ = [
    "PRESETS", "FeatureCache", "FrontendConfig", "LogMel", "SplitData", "default_cache_dir", "get_frontend",
    "hann_window", "load_split_data", "load_split_waveforms", "log_mel", "mel_filterbank", "sparse_mel",
]
