"""MAX_POOL_2D → ``asc_max_pool_s8``.

TFLite int8 max pooling (``pooling.cc``, ``reference_integer_ops::MaxPool``): the maximum over the
in-image taps of each window, then the fused activation clamp; input and output share scale and
zero point. Parameters as AVERAGE_POOL_2D (:func:`.avg_pool.pool_params`). tflite-micro is the
reference.
"""

from __future__ import annotations

from . import Op, register, row_major_lead
from .avg_pool import emit_pool, pool_cases, pool_params


@register
class MaxPool2D(Op):
    kind = "max_pool"
    builtins = ("MAX_POOL_2D",)
    c_function = "asc_max_pool_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        return ctx.layer(self.kind, op, [x_id], y_id, pool_params(ctx, op, x_id, y_id))

    def emit(self, L, em):
        return emit_pool(L, em, self.c_function)

    def overlap_lead_bytes(self, L, graph):
        """``asc_max_pool_s8`` writes output pixels in row-major order, each after reading its window, one
        pixel at a time: :func:`~asc_edge.codegen.ops.row_major_lead` with a batch of 1."""
        return row_major_lead(graph.tensors[L.inputs[0]].dims, graph.tensors[L.output].dims,
                              L.params.stride[0], L.params.padding[0], 1)

    def cases(self, rng):
        return pool_cases(rng, "max_pool", "MAX_POOL_2D", "max_pool2d")
