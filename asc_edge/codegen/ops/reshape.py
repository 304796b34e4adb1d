"""RESHAPE → an alias of its input's buffer (no call), or ``asc_reshape_s8`` (a byte copy) when the
input is the graph input (whose buffer belongs to the caller).
"""

from __future__ import annotations

from . import Op, register


@register
class Reshape(Op):
    kind = "reshape"
    builtins = ("RESHAPE",)
    c_function = "asc_reshape_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        x, y = ctx.tensors[x_id], ctx.tensors[y_id]
        if not ctx.same_quant(x_id, y_id) or x.size != y.size:
            ctx.fail(op, "RESHAPE changes quantisation or size", "invalid int8 RESHAPE")
        if x_id != ctx.input:  # same bytes (row-major): the planner gives both ids one buffer
            y.alias_of = x_id
            ctx.rewrites["reshape_alias"].append(op.index)
        return ctx.layer(self.kind, op, [x_id], y_id)

    def emit(self, L, em):
        if em.T[L.output].alias_of is not None:
            return ["/* alias of the input buffer: no copy */", "st = ASC_NN_OK;"]
        return [f"st = {self.c_function}({em.ptr(L.inputs[0])}, {em.ptr(L.output)}, {em.T[L.output].size});"]
