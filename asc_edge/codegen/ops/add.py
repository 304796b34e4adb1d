"""ADD → ``asc_add_s8`` (4-D NumPy-style broadcasting; an operand may be a constant).

TFLite(-Micro) int8 ADD (``add.cc``, ``CalculateOpDataAdd``): both inputs rescaled to
``2 · max(s1, s2)`` with ``left_shift = 20`` (:func:`asc_edge.codegen.quant.add_params`).
tflite-micro is the reference.
"""

from __future__ import annotations

import numpy as np

from asc_edge.codegen import c_abi, quant

from . import Op, OpCase, register
from .conv import _range


def binary_operands(ctx, op):
    """(input ids with -1 for constants, per input (scale, zero point), consts, output id) of a
    two-operand element-wise op; checks that both operands broadcast onto the output."""
    from asc_edge.codegen.graph import nhwc

    y_id = ctx.act(op.outputs[0], op)
    y = ctx.tensors[y_id]
    ids, qp, consts = [], [], {}
    for k, tid in enumerate(op.inputs[:2]):
        t = ctx.info(tid)
        if t.const:
            if t.dtype != "INT8" or not t.quantized:
                ctx.fail(op, f"constant operand {k} is not int8", "full-integer quantisation needed")
            consts[f"const{k}"] = np.ascontiguousarray(t.data.reshape(-1))
            consts[f"const{k}_dims"] = np.array(nhwc(t.shape), np.int32)
            ids.append(-1)
            qp.append((t.scale, t.zero_point))
        else:
            ids.append(ctx.act(tid, op))
            qp.append((ctx.tensors[tid].scale, ctx.tensors[tid].zero_point))
    for k in range(2):
        d = ctx.tensors[ids[k]].dims if ids[k] >= 0 else tuple(consts[f"const{k}_dims"])
        if any(a != b and a != 1 for a, b in zip(d, y.dims)):
            ctx.fail(op, f"operand {k} shape {list(d)} does not broadcast to {y.shape}", "NumPy-style 4-D broadcasting only")
    return ids, qp, consts, y_id


def parse_binary(ctx, op, kind: str, struct: str, quant_fn):
    """A two-operand element-wise layer: operands (:func:`binary_operands`), the kernel's
    requantisation parameters ``quant_fn(s1, zp1, s2, zp2, s_out, zp_out)`` and the fused
    activation, as the C struct ``struct``."""
    ids, qp, consts, y_id = binary_operands(ctx, op)
    y = ctx.tensors[y_id]
    p = quant_fn(qp[0][0], qp[0][1], qp[1][0], qp[1][1], y.scale, y.zero_point)
    act = quant.activation_range(op.options.get("fusedActivationFunction"), y.scale, y.zero_point)
    return ctx.layer(kind, op, ids, y_id, c_abi.params(struct, activation=act, **p), consts)


def emit_binary(L, em, fn: str) -> list:
    """``static const`` operands/dims and ``st = fn(&p, &a_d, a, &b_d, b, &out_d, y)``."""
    srcs, dims = [], []
    for k, tid in enumerate(L.inputs):
        if tid < 0:
            srcs.append(em.array(L, f"c{k}", "int8_t", L.consts[f"const{k}"]))
            dims.append(em.dims(L.consts[f"const{k}_dims"]))
        else:
            srcs.append(em.ptr(tid))
            dims.append(em.dims(em.T[tid].dims))
    return [f"static const {type(L.params).__name__} p = {em.init(L.params)};",
            f"static const asc_nn_dims a_d = {dims[0]}, b_d = {dims[1]}, out_d = {em.dims(em.T[L.output].dims)};",
            f"st = {fn}(&p, &a_d, {srcs[0]}, &b_d, {srcs[1]}, &out_d, {em.ptr(L.output)});"]


# broadcast forms of b (axes it is averaged over): none; (1, 1, 1, C) as an SE gate; (1, 1, W, C) as
# BC-ResNet's frequency-averaged branch (one contiguous run of W·C per row); (1, H, W, 1) (the
# channel dim broadcast: the element-by-element loop)
_BCAST_AXES = {"": None, "_bcast": [1, 2], "_bcast_h": [1], "_bcast_c": [3]}


def binary_cases(rng, name: str, builtin: str, fn, n: int = 4) -> list:
    """Random cases of ``fn(tf, a, b)`` on one input ``x``: ``a = x``, ``b = x · c`` (a per-channel
    constant, so b has its own scale); the second half broadcasts ``b`` (its mean over H and W, over
    H, or over C, in turn: :data:`_BCAST_AXES`)."""
    out = []
    forms = list(_BCAST_AXES)[1:]
    for i in range(n):
        shape = [1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(3, 33)) | 1]
        c = (rng.uniform(0.2, 1.0, shape[3]) * rng.choice([-1, 1], shape[3]) * 10 ** rng.uniform(-1, 1)).astype("float32")
        form = "" if i < n // 2 else forms[(i - n // 2) % len(forms)]

        def build(tf, x, c=c, axes=_BCAST_AXES[form]):
            b = x * c
            if axes:
                b = tf.reduce_mean(b, axis=axes, keepdims=True)
            return fn(tf, x, b)

        out.append(OpCase(f"{name}_{i}{form}", shape, _range(rng), build, (builtin,)))
    return out


@register
class Add(Op):
    kind = "add"
    builtins = ("ADD",)
    report_type = "add"
    c_function = "asc_add_s8"

    def parse(self, ctx, op):
        return parse_binary(ctx, op, self.kind, "asc_nn_add_params", quant.add_params)

    def emit(self, L, em):
        return emit_binary(L, em, self.c_function)

    def cases(self, rng):
        return binary_cases(rng, "add", "ADD", lambda tf, a, b: a + b, 6) + binary_cases(
            rng, "add_relu", "ADD", lambda tf, a, b: tf.nn.relu(a + b), 2)
