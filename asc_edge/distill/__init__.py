"""Knowledge distillation: the KD loss and the offline teacher-logit cache."""

from asc_edge.distill.kd import ce_term, kd_loss, kl_term
from asc_edge.distill.teacher_cache import TeacherLogitCache, clip_list_digest, ensemble_logits, file_sha256

__all__ = ["kd_loss", "kl_term", "ce_term", "ensemble_logits", "TeacherLogitCache", "file_sha256",
           "clip_list_digest"]
