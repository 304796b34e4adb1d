"""The MobileNetV2-style inverted-residual block (CP-Mobile's blocks), fused row by row.

The layer chain ``X → conv1x1 E (expand) → depthwise D → conv1x1 P (project) [→ ADD A(P, X)]``.
Layer by layer, E's and D's outputs exist in full (CP-Mobile's first stage: 64×17×64 = 69,632
bytes each), which is why tflite-micro needs ~228 KB of arena. ``asc_inverted_residual_s8_packed``
(``firmware/nn/asc_fused_s8.c``) runs a few output rows at a time: only the expanded rows they
need, their depthwise rows and (with the ADD) their projected rows live in the scratch buffer; with
a fused ADD whose other operand ``X`` dies there, the output is written over ``X`` in place. Every
element is computed with the unfused layers' operands and parameters: bit-identical. A speed build
(``export --optimize speed``) also stores in flash what the kernels would recompute every four rows:
the 1x1 filters pre-widened to int16 lanes (:func:`asc_edge.codegen.speed_tables.widen_1x1_filter`), the 1x1 requantisation
records and the 3x3 depthwise tables (:mod:`asc_edge.codegen.speed_tables`), passed to
``asc_inverted_residual_s8_packed``; a size build passes none (same results).

Matched when: E is a 1×1 stride-1 unpadded convolution whose output feeds only D; D is a depthwise
convolution with channel multiplier 1 and dilation 1 whose output feeds only P; P is a 1×1 stride-1
convolution of D's output. The ADD joins when P's output feeds only an ADD whose other operand is X
with the same shape (no broadcasting); in place when X is not the graph input and the ADD is X's
last use. The scratch size comes from ``asc_inverted_residual_s8_get_buffer_size``.
"""

from __future__ import annotations

import ctypes as C

from asc_edge.codegen import c_abi

from ..speed_tables import pack_1x1_requant, pack_dw3, widen_1x1_filter
from . import FusedStep, Pattern, register


@register
class InvertedResidual(Pattern):
    name = "inverted_residual"
    # ASC_NN_PROFILE parts of asc_fused_s8.c: 0 expansion, 1 depthwise, 2 projection, 3 ADD
    parts = ("conv1x1", "depthwise", "conv1x1", "add")
    c_function = "asc_inverted_residual_s8_packed"

    def match(self, graph, cons):
        by_out = {L.output: L for L in graph.layers}
        T = graph.tensors
        steps = []
        for D in graph.layers:
            if D.kind != "depthwise" or D.params.ch_mult != 1 or D.params.dilation != (1, 1):
                continue
            E = by_out.get(D.inputs[0])
            if E is None or E.kind != "conv1x1" or E.params.stride != (1, 1):
                continue
            if cons.get(graph.root(E.output)) != [D.index] or T[E.output].alias_of is not None:
                continue
            users = cons.get(graph.root(D.output), [])
            if len(users) != 1:
                continue
            P = graph.layers[users[0]]
            if P.kind != "conv1x1" or P.params.stride != (1, 1) or P.inputs[0] != D.output:
                continue
            x = E.inputs[0]
            if T[x].dims[0] != 1:
                continue
            layers, internal, out = [E.index, D.index, P.index], [E.output, D.output], P.output
            add_first, in_place = True, False
            p_users = cons.get(graph.root(P.output), [])
            if len(p_users) == 1 and P.output != graph.output:
                A = graph.layers[p_users[0]]
                if (A.kind == "add" and len(A.inputs) == 2 and all(t >= 0 for t in A.inputs)
                        and graph.root(x) in (graph.root(A.inputs[0]), graph.root(A.inputs[1]))
                        and A.inputs.count(P.output) == 1
                        and T[A.inputs[0]].dims == T[A.inputs[1]].dims == T[A.output].dims):
                    layers.append(A.index)
                    internal.append(P.output)
                    out = A.output
                    add_first = A.inputs[0] == P.output
                    x_last = max(cons.get(graph.root(x), [A.index]))
                    in_place = (graph.root(x) != graph.input and x_last == A.index and graph.root(x) != graph.output
                                and T[A.output].alias_of is None)
            steps.append(FusedStep(self.name, layers, x, out, internal, in_place=in_place,
                                   info={"add_project_first": add_first}))
        return steps

    def scratch_bytes(self, st, graph):
        from asc_edge.codegen.kernels_host import buffer_size

        E, D, P = (graph.layers[i] for i in st.layers[:3])
        dummy = (C.c_int8 * 1)()
        ptr = C.cast(dummy, C.c_void_p).value
        convs = {L.index: c_abi.to_ctypes(L.params) for L in (E, D, P)}
        add = c_abi.to_ctypes(graph.layers[st.layers[3]].params) if len(st.layers) == 4 else None
        S = c_abi.ctypes_struct("asc_nn_inverted_residual_params")
        p = S()
        p.expand, p.depthwise, p.project = (C.pointer(convs[i]) for i in st.layers[:3])
        p.expand_filter = p.depthwise_filter = p.project_filter = C.cast(ptr, type(p.expand_filter))
        p.expand_channels = graph.tensors[E.output].dims[3]
        p.depthwise_filter_dims = c_abi.ctypes_struct("asc_nn_dims")(*D.consts["filter"].shape)
        if add is not None:
            p.add = C.pointer(add)
        p.add_project_first = int(st.info["add_project_first"])
        return buffer_size("asc_inverted_residual_s8_get_buffer_size", p,
                           ("asc_nn_dims", graph.tensors[st.input].dims), ("asc_nn_dims", graph.tensors[st.output].dims))

    def emit(self, st, em):
        from asc_edge.codegen.ops.conv import emit_weights

        g = em.graph
        E, D, P = (g.layers[i] for i in st.layers[:3])
        A = g.layers[st.layers[3]] if len(st.layers) == 4 else None
        biases = [emit_weights(L, em) for L in (E, D, P)]
        code = [f"static const asc_nn_conv_params pe = {em.init(E.params)}, pp = {em.init(P.params)};",
                f"static const asc_nn_dw_conv_params pd = {em.init(D.params)};"]
        if A is not None:
            code.append(f"static const asc_nn_add_params pa = {em.init(A.params)};")
        max_k = c_abi.define("ASC_PW_MAX_K")
        tables = {}
        for role, L in (("expand", E), ("project", P)):
            # the 1x1 filters also pre-widened for the DSP kernels (flash, read-only)
            words = widen_1x1_filter(L.consts["filter"])
            if L.consts["filter"].shape[-1] > max_k or em.optimize == "size":
                # the DSP kernel would not read them / a size build: widened at run time instead
                words = words[:0]
            tables[f"{role}_filter_w16"] = em.array(L, "w16", "int32_t", words) if words.size else "0"
            rq = None if em.optimize == "size" else pack_1x1_requant(
                L.consts["multiplier"], L.consts["shift"], L.consts.get("bias"), k=int(L.consts["filter"].shape[-1]),
                input_offset=L.params.input_offset, output_offset=L.params.output_offset,
                activation=tuple(L.params.activation), max_k=max_k)
            tables[f"{role}_requant"] = em.array(L, "rq", "int32_t", rq) if rq is not None else "0"
        dw3 = None if em.optimize == "size" else pack_dw3(
            D.consts["filter"], D.consts["multiplier"], D.consts["shift"], D.consts.get("bias"),
            input_offset=D.params.input_offset, output_offset=D.params.output_offset,
            dilation=tuple(D.params.dilation), ch_mult=D.params.ch_mult)
        tables["depthwise_dw3"] = em.array(D, "dw3", "int32_t", dw3) if dw3 is not None else "0"
        q = {L.index: (f"L{L.index}_mult", f"L{L.index}_shift") for L in (E, D, P)}
        p = c_abi.params(
            "asc_nn_inverted_residual_params",
            expand="&pe", expand_quant=q[E.index], expand_filter=f"L{E.index}_filter", expand_bias=biases[0],
            expand_channels=g.tensors[E.output].dims[3],
            depthwise="&pd", depthwise_quant=q[D.index], depthwise_filter_dims=D.consts["filter"].shape,
            depthwise_filter=f"L{D.index}_filter", depthwise_bias=biases[1],
            project="&pp", project_quant=q[P.index], project_filter=f"L{P.index}_filter", project_bias=biases[2],
            add="&pa" if A is not None else "0", add_project_first=int(st.info["add_project_first"]))
        ctx_lines, ctx_expr = em.scratch(st)
        t = c_abi.params("asc_nn_inverted_residual_tables", **tables)
        return code + [f"static const asc_nn_inverted_residual_params p = {em.init(p)};",
                       f"static const asc_nn_inverted_residual_tables t = {em.init(t)};",
                       f"static const asc_nn_dims in_d = {em.dims(g.tensors[st.input].dims)}, "
                       f"out_d = {em.dims(g.tensors[st.output].dims)};",
                       *ctx_lines,
                       f"st = {self.c_function}({ctx_expr}, &p, &t, &in_d, {em.ptr(st.input)}, "
                       f"&out_d, {em.ptr(st.output)});"]
