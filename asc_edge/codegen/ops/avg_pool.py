"""AVERAGE_POOL_2D → ``asc_avgpool_s8``.

TFLite int8 average pooling (``pooling.cc``, ``reference_integer_ops::AveragePool``): the sum over
the in-image taps divided by their count with rounding half away from zero; input and output share
scale and zero point. tflite-micro is the reference.
"""

from __future__ import annotations

from asc_edge.codegen import c_abi, quant

from . import Op, OpCase, register, row_major_lead
from .conv import _range


def pool_params(ctx, op, x_id, y_id):
    """``asc_nn_pool_params`` of a Pool2DOptions operator (TFLite padding, fused activation)."""
    o = op.options
    x, y = ctx.tensors[x_id], ctx.tensors[y_id]
    if not ctx.same_quant(x_id, y_id):
        ctx.fail(op, "input and output quantisation differ", f"TFLite int8 {op.op} shares them")
    fh, fw, sh, sw = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
    pt, oh = quant.tflite_padding(x.dims[1], fh, sh, 1, o["padding"])
    pl, ow = quant.tflite_padding(x.dims[2], fw, sw, 1, o["padding"])
    if (oh, ow) != y.dims[1:3]:
        ctx.fail(op, f"output {y.shape} ≠ computed {oh}x{ow}", "unexpected pooling geometry")
    act = quant.activation_range(o.get("fusedActivationFunction"), y.scale, y.zero_point)
    return c_abi.params("asc_nn_pool_params", filter=(fh, fw), stride=(sh, sw), padding=(pt, pl), activation=act)


def emit_pool(L, em, fn: str) -> list:
    return [f"static const asc_nn_pool_params p = {em.init(L.params)};",
            f"static const asc_nn_dims in_d = {em.dims(em.T[L.inputs[0]].dims)}, out_d = {em.dims(em.T[L.output].dims)};",
            f"st = {fn}(&p, &in_d, {em.ptr(L.inputs[0])}, &out_d, {em.ptr(L.output)});"]


def pool_cases(rng, name: str, builtin: str, tf_fn: str) -> list:
    out = []
    for filt, stride, pad in [((2, 2), (2, 2), "VALID"), ((3, 3), (1, 1), "SAME"), ((3, 3), (2, 2), "SAME"),
                              ((2, 1), (2, 1), "VALID"), ((3, 2), (2, 1), "SAME")]:
        shape = [1, int(rng.integers(4, 12)), int(rng.integers(4, 12)), int(rng.integers(3, 25)) | 1]
        out.append(OpCase(f"{name}_{filt[0]}{filt[1]}_s{stride[0]}{stride[1]}_{pad}", shape, _range(rng),
                          lambda tf, x, f=filt, s=stride, p=pad: getattr(tf.nn, tf_fn)(x, f, s, p), (builtin,)))
    return out


@register
class AveragePool2D(Op):
    kind = "avgpool"
    builtins = ("AVERAGE_POOL_2D",)
    c_function = "asc_avgpool_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        return ctx.layer(self.kind, op, [x_id], y_id, pool_params(ctx, op, x_id, y_id))

    def emit(self, L, em):
        return emit_pool(L, em, self.c_function)

    def overlap_lead_bytes(self, L, graph):
        """``asc_avgpool_s8`` writes output pixels in row-major order, each after reading its window, one
        pixel at a time: :func:`~asc_edge.codegen.ops.row_major_lead` with a batch of 1."""
        return row_major_lead(graph.tensors[L.inputs[0]].dims, graph.tensors[L.output].dims,
                              L.params.stride[0], L.params.padding[0], 1)

    def cases(self, rng):
        return pool_cases(rng, "avgpool", "AVERAGE_POOL_2D", "avg_pool2d")
