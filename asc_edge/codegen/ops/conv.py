"""CONV_2D → ``asc_convolve_s8`` (kind ``conv``) or ``asc_convolve_1x1_s8`` (kind ``conv1x1``).

Parsing (TFLite ``conv.cc`` / ``ConvParams``): per-channel symmetric int8 filter ``(C_out, kh, kw,
C_in / groups)``, int32 bias, ``(multiplier, shift)`` per output channel from
``input_scale · filter_scale[c] / output_scale`` (:func:`asc_edge.codegen.quant.conv_multipliers`),
SAME padding as TFLite computes it, fused activation as a clamp in the output domain. A PAD
before it (recorded by :mod:`.pad`) becomes explicit ``padding`` (the kernels skip out-of-image
taps, which equals padding with the input zero point). A grouped CONV_2D with ``groups ==
in_channels`` is parsed into the depthwise kernel (:mod:`.depthwise`), other grouped ones run on
``asc_convolve_s8`` (groups = in_channels / filter channels); a 1×1 stride-any unpadded undilated
ungrouped convolution takes the 1×1 kernel. tflite-micro is the reference.
"""

from __future__ import annotations

import numpy as np

from asc_edge.codegen import c_abi, quant

from . import Op, OpCase, register, row_major_lead


def conv_like(ctx, op, depthwise_builtin: bool):
    """Parse CONV_2D / DEPTHWISE_CONV_2D into a Layer of kind conv, conv1x1 or depthwise."""
    o = op.options
    x_id, pad_t, pad_l, idx = op.inputs[0], 0, 0, [op.index]
    if op.index in ctx.folded_pad:
        pad_t, pad_l, x_id = ctx.folded_pad.pop(op.index)
        idx = [op.index - 1, op.index] if ctx.model.ops[op.index - 1].op == "PAD" else idx
    x_id = ctx.act(x_id, op)
    y_id = ctx.act(op.outputs[0], op)
    xs = ctx.info(op.inputs[0]).shape  # the (possibly padded) conv input
    filt = ctx.const(op.inputs[1], op, np.int8, "filter")
    w = ctx.info(op.inputs[1])
    if not w.quantized or np.any(w.zero_points != 0):
        ctx.fail(op, "filter not symmetric per-channel int8", "convert with -qt per-channel")
    kh, kw = filt.shape[1], filt.shape[2]
    sh, sw = o["strideH"], o["strideW"]
    dh, dw = o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    pt = pl = 0
    if o["padding"] == "SAME":
        pt, _ = quant.tflite_padding(xs[1], kh, sh, dh, "SAME")
        pl, _ = quant.tflite_padding(xs[2], kw, sw, dw, "SAME")
    in_ch = ctx.tensors[x_id].dims[3]
    y = ctx.tensors[y_id]
    kind, ch_mult = "conv", 1
    if not depthwise_builtin:
        groups = in_ch // filt.shape[3]
        if groups > 1:
            if filt.shape[3] == 1 and filt.shape[0] % in_ch == 0:
                kind, ch_mult = "depthwise", filt.shape[0] // in_ch
                filt = np.ascontiguousarray(filt.transpose(3, 1, 2, 0))  # (1, kh, kw, C_out)
                ctx.rewrites["grouped_as_depthwise"].append(op.index)
            elif in_ch % filt.shape[3] or filt.shape[0] % groups:
                ctx.fail(op, f"grouped convolution: {in_ch} input channels, filter {list(filt.shape)}", "invalid model")
            # else: a grouped CONV_2D, which asc_convolve_s8 runs (groups = in_ch / filter channels)
        n_out = y.dims[3]
    else:
        kind, ch_mult = "depthwise", int(o.get("depthMultiplier", 1) or 1)
        n_out = filt.shape[3]
        if n_out != in_ch * ch_mult:
            ctx.fail(op, f"{n_out} output channels ≠ {in_ch}·{ch_mult}", "invalid depthwise filter")
    scales = np.broadcast_to(w.scales, (n_out,)) if len(w.scales) == 1 else w.scales
    if len(scales) != n_out:
        ctx.fail(op, f"{len(w.scales)} filter scales for {n_out} output channels", "per-channel quantisation needed")
    mult, shift = quant.conv_multipliers(ctx.tensors[x_id].scale, scales, y.scale)
    bias = None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = ctx.const(op.inputs[2], op, np.int32, "bias").astype(np.int32)
    act = quant.activation_range(o.get("fusedActivationFunction"), y.scale, y.zero_point)
    pad = (pt + pad_t, pl + pad_l)
    common = dict(input_offset=-ctx.tensors[x_id].zero_point, output_offset=y.zero_point, stride=(sh, sw),
                  padding=pad, dilation=(dh, dw), activation=act)
    if kind == "depthwise":
        params = c_abi.params("asc_nn_dw_conv_params", ch_mult=ch_mult, **common)
    else:
        if kh == 1 and kw == 1 and pad == (0, 0) and (dh, dw) == (1, 1) and filt.shape[3] == in_ch:
            kind = "conv1x1"
        params = c_abi.params("asc_nn_conv_params", **common)
    consts = dict(filter=np.ascontiguousarray(filt, dtype=np.int8), bias=bias, multiplier=mult, shift=shift)
    return ctx.layer(kind, op, [x_id], y_id, params, consts, op_indices=idx)


def emit_weights(L, em) -> str:
    """Emit a weighted layer's filter / bias / multiplier / shift arrays; returns the bias symbol
    (``"0"`` without bias). Also declares ``q`` (``asc_nn_per_channel_quant``) in the caller's block."""
    em.array(L, "filter", "int8_t", L.consts["filter"])
    bias = "0"
    if L.consts.get("bias") is not None:
        bias = em.array(L, "bias", "int32_t", L.consts["bias"])
    em.array(L, "mult", "int32_t", L.consts["multiplier"])
    em.array(L, "shift", "int32_t", L.consts["shift"])
    return bias


def quant_init(L) -> str:
    return f"{{.multiplier = L{L.index}_mult, .shift = L{L.index}_shift}}"


def conv_call(L, em, fn: str, ctx_expr: str, packed: bool = False) -> list:
    """The call of ``fn``. ``packed``: where :func:`speed_tables` gives the layer's tables, the
    call of ``fn + "_packed"`` with them (after the filter: ``L<i>_w16, L<i>_rq``)."""
    bias = emit_weights(L, em)
    x = L.inputs[0]
    tables = speed_tables(L, em) if packed else None
    w = f"L{L.index}_filter"
    if tables is not None:
        fn, w = fn + "_packed", f"{w}, {tables[0]}, {tables[1]}"
    return [f"static const asc_nn_per_channel_quant q = {quant_init(L)};",
            f"static const asc_nn_dims in_d = {em.dims(em.T[x].dims)}, f_d = {em.dims(L.consts['filter'].shape)}, "
            f"out_d = {em.dims(em.T[L.output].dims)};",
            f"static const {type(L.params).__name__} p = {em.init(L.params)};",
            f"st = {fn}({ctx_expr}, &p, &q, &in_d, {em.ptr(x)}, &f_d, {w}, {bias}, &out_d, "
            f"{em.ptr(L.output)});"]


def speed_tables(L, em) -> tuple[str, str] | None:
    """A speed build's flash tables of a CONV_2D (kind ``conv`` or ``conv1x1``): the filter
    pre-widened and the requantisation records (:func:`asc_edge.codegen.speed_tables.pack_conv`),
    which the DSP GEMM otherwise rebuilds for every chunk of output pixels (the general
    convolution: 2 · (ASC_PW_CONV_XBUF_WORDS / (4 · ceil(K / 4))) pixels; the 1×1: 2 · (640 /
    (4 · ceil(K / 4)))). Emitted as ``L<i>_w16``, ``L<i>_rq`` (the symbols are returned) only where
    that path reads them: ``conv`` when ``asc_pw_conv`` runs (groups 1, K ≤ ASC_PW_MAX_K, an even
    number of output channels, ≥ 2 output pixels, input offset in [-127, 128]), ``conv1x1`` when
    ``asc_pw_gemm`` runs (stride 1, ≥ 2 pixels); every channel must be in the fast form (else
    ``pack_conv`` gives none). ``None``: a size build, or not applicable. CP-Mobile: the two stem
    convolutions and the classifier's 1×1."""
    from asc_edge.codegen.speed_tables import pack_conv

    if em.optimize == "size":
        return None
    f, p = L.consts["filter"], L.params
    x, y = em.T[L.inputs[0]].dims, em.T[L.output].dims
    n_px = int(np.prod(y[:3]))
    if L.kind == "conv":
        if f.shape[3] != x[3] or f.shape[0] % 2 or not -127 <= p.input_offset <= 128 or n_px < 2:
            return None
    elif tuple(p.stride) != (1, 1) or n_px < 2:
        return None
    tables = pack_conv(f, L.consts["multiplier"], L.consts["shift"], L.consts.get("bias"),
                       input_offset=p.input_offset, output_offset=p.output_offset,
                       activation=tuple(p.activation), max_k=c_abi.define("ASC_PW_MAX_K"))
    if tables is None:
        return None
    return em.array(L, "w16", "int32_t", tables[0]), em.array(L, "rq", "int32_t", tables[1])


def conv_macs(L, graph) -> int:
    f = L.consts["filter"].shape
    return int(np.prod(graph.tensors[L.output].dims)) * int(f[1]) * int(f[2]) * int(f[3])


def conv_cases(rng, k, stride, cin, padding="SAME", cout=None, groups=1, name="conv"):
    """One random CONV_2D case (``padding`` SAME / VALID, or EXPLICIT = a PAD op before a VALID conv)."""
    h, w = int(rng.integers(5, 14)), int(rng.integers(5, 14))
    cout = cout or (groups * int(rng.integers(1, 4)) if groups > 1 else int(rng.integers(3, 24)) | 1)
    wmag = float(10 ** rng.uniform(-2.5, 0.5))
    filt = (rng.standard_normal((k[0], k[1], cin // groups, cout)) * wmag).astype(np.float32)
    bias = (rng.standard_normal(cout) * wmag).astype(np.float32)
    act = ["NONE", "RELU", "RELU6"][int(rng.integers(0, 3))]
    pads = [int(v) for v in rng.integers(0, 3, size=4)]

    def build(tf, x):
        if padding == "EXPLICIT":
            x = tf.pad(x, [[0, 0], pads[:2], pads[2:], [0, 0]])
        y = tf.nn.conv2d(x, filt, strides=[1, *stride, 1], padding="VALID" if padding == "EXPLICIT" else padding)
        y = tf.nn.bias_add(y, bias)
        return {"NONE": y, "RELU": tf.nn.relu(y), "RELU6": tf.nn.relu6(y)}[act]

    return OpCase(f"{name}_k{k[0]}x{k[1]}_s{stride[0]}{stride[1]}_{padding}_c{cin}g{groups}", [1, h, w, cin], _range(rng), build, ("CONV_2D",))


def _range(rng) -> tuple:
    """A random calibration range spanning ~1e-3 .. ~1e2, sometimes one-sided."""
    mag = float(10 ** rng.uniform(-3, 2))
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return (0.0, mag)
    if kind == 1:
        return (-mag, 0.2 * mag)
    return (-mag * float(rng.uniform(0.3, 1.0)), mag)


@register
class Conv2D(Op):
    kind = "conv"
    builtins = ("CONV_2D",)
    report_type = "conv"
    c_function = "asc_convolve_s8"

    def parse(self, ctx, op):
        return conv_like(ctx, op, depthwise_builtin=False)

    def emit(self, L, em):
        ctx_lines, ctx_expr = em.scratch(L)
        return ctx_lines + conv_call(L, em, self.c_function, ctx_expr, packed=True)

    def scratch_bytes(self, L, graph):
        from asc_edge.codegen.kernels_host import buffer_size

        return buffer_size("asc_convolve_s8_get_buffer_size", ("asc_nn_dims", graph.tensors[L.inputs[0]].dims),
                           ("asc_nn_dims", L.consts["filter"].shape))

    def macs(self, L, graph):
        return conv_macs(L, graph)

    def overlap_lead_bytes(self, L, graph):
        """``asc_convolve_s8`` writes output pixels in row-major order after reading their receptive
        fields, at most ``batch`` pixels ahead: 1 (portable), 2 (the DSP im2col path) or ``2 ·
        (ASC_PW_CONV_XBUF_WORDS / (4 · ceil(K / 4)))`` (the DSP pixel-pair path, K = kh · kw · in_c
        ≤ ASC_PW_MAX_K): :func:`~asc_edge.codegen.ops.row_major_lead`. CP-Mobile's second stem
        convolution (128×33×8 → 64×17×32) then needs ~37 KB instead of 68 KB."""
        k = int(np.prod(L.consts["filter"].shape[1:]))
        batch = 2
        if k <= c_abi.define("ASC_PW_MAX_K"):
            batch = max(batch, 2 * (c_abi.define("ASC_PW_CONV_XBUF_WORDS") // (4 * ((k + 3) // 4))))
        return row_major_lead(graph.tensors[L.inputs[0]].dims, graph.tensors[L.output].dims,
                              L.params.stride[0], L.params.padding[0], batch)

    def cases(self, rng):
        odd = lambda lo, hi: int(rng.integers(lo, hi)) | 1  # noqa: E731
        return [conv_cases(rng, (3, 3), (2, 2), 1, padding="SAME"),
                conv_cases(rng, (3, 3), (2, 2), 3, padding="VALID"),
                conv_cases(rng, (3, 3), (1, 1), odd(3, 12), padding="SAME"),
                conv_cases(rng, (3, 3), (1, 2), odd(3, 12), padding="SAME"),
                conv_cases(rng, (3, 3), (2, 1), odd(3, 12), padding="SAME"),
                conv_cases(rng, (5, 3), (2, 2), odd(3, 9), padding="SAME"),
                conv_cases(rng, (3, 3), (2, 2), 8, padding="EXPLICIT"),
                conv_cases(rng, (3, 3), (1, 1), odd(5, 16), padding="EXPLICIT"),
                conv_cases(rng, (3, 3), (1, 1), 12, groups=3, padding="SAME")]


@register
class Conv1x1(Op):
    """The 1×1 kernel (parsed by :class:`Conv2D`)."""
    kind = "conv1x1"
    report_type = "conv1x1"
    c_function = "asc_convolve_1x1_s8"

    def emit(self, L, em):
        return conv_call(L, em, self.c_function, "0", packed=True)

    def macs(self, L, graph):
        return conv_macs(L, graph)

    def cases(self, rng):
        odd = lambda lo, hi: int(rng.integers(lo, hi)) | 1  # noqa: E731
        return [conv_cases(rng, (1, 1), (1, 1), odd(9, 40), padding="VALID", name="conv1x1"),
                conv_cases(rng, (1, 1), (1, 1), odd(9, 40), padding="SAME", name="conv1x1"),
                conv_cases(rng, (1, 1), (1, 1), 32, padding="VALID", name="conv1x1"),
                conv_cases(rng, (1, 1), (2, 2), odd(9, 24), padding="VALID", name="conv1x1")]
