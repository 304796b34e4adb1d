"""PAD (H/W only, pad value = zero point) folded into its only consumer, a CONV_2D or
DEPTHWISE_CONV_2D, as explicit ``padding`` (exact: the kernels skip out-of-image taps, and
``x + input_offset`` is 0 for a padded zero point). Anything else is refused.
"""

from __future__ import annotations

from . import Op, register


@register
class Pad(Op):
    kind = "pad"
    builtins = ("PAD",)

    def parse(self, ctx, op):
        out = op.outputs[0]
        pads = ctx.values(op.inputs[1], op, "paddings")
        users = ctx.consumers.get(out, [])
        nxt = ctx.model.ops[users[0]] if len(users) == 1 else None
        if len(pads) != 4:
            ctx.fail(op, "non-4-D paddings", "export a static graph")
        if pads[0] != [0, 0] or pads[3] != [0, 0]:
            ctx.fail(op, f"padding {pads} on batch/channels", "only H/W padding can be folded")
        if nxt is None or nxt.op not in ("CONV_2D", "DEPTHWISE_CONV_2D") or nxt.inputs[0] != out:
            ctx.fail(op, "PAD not followed by its only consumer CONV_2D / DEPTHWISE_CONV_2D",
                     "only PAD → convolution is supported (asc_pad_s8 exists but is not wired in)")
        src, dst = ctx.info(op.inputs[0]), ctx.info(out)
        if (src.scale, src.zero_point) != (dst.scale, dst.zero_point):
            ctx.fail(op, "PAD changes quantisation", "invalid int8 PAD")
        ctx.act(op.inputs[0], op)
        ctx.folded_pad[nxt.index] = (pads[1][0], pads[2][0], op.inputs[0])
        ctx.rewrites["pad_folded"].append(op.index)
        return None
