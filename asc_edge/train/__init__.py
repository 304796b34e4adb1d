"""Training: TrainConfig → Lightning module → run directory."""
from .config import TrainConfig
from .evaluate import evaluate_checkpoint
from .run import train

__all__ = ["TrainConfig", "evaluate_checkpoint", "train"]
