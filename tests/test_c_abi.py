"""The C ABI read from firmware/nn/asc_nn.h (asc_edge.codegen.c_abi): the ctypes layouts equal the
compiler's (sizeof / offsetof of every struct and member, host gcc), designated initialisers set
the fields they name, and a wrong field name is an error before any C is written."""

from __future__ import annotations

import ctypes as C
import subprocess

import pytest

from asc_edge.codegen import c_abi
from asc_edge.codegen.kernels_host import NN_DIR


def _run_c(tmp_path, body: str) -> str:
    src, exe = tmp_path / "t.c", tmp_path / "t"
    src.write_text('#include <stddef.h>\n#include <stdio.h>\n#include "asc_nn.h"\nint main(void) {\n' + body
                   + "return 0; }\n")
    r = subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{NN_DIR}", str(src), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_ctypes_layout_equals_the_compilers(tmp_path):
    structs = c_abi.structs()
    assert {"asc_nn_conv_params", "asc_nn_dw_conv_params", "asc_nn_add_params", "asc_nn_inverted_residual_params",
            "asc_nn_dims"} <= set(structs)
    body, expect = [], []
    for name, fields in structs.items():
        cls = c_abi.ctypes_struct(name)
        body.append(f'printf("%zu\\n", sizeof({name}));')
        expect.append(C.sizeof(cls))
        for f in fields:
            body.append(f'printf("%zu\\n", offsetof({name}, {f.name}));')
            expect.append(getattr(cls, f.name).offset)
    got = [int(v) for v in _run_c(tmp_path, "\n".join(body)).split()]
    assert got == expect


def test_designated_initialiser_sets_named_fields(tmp_path):
    p = c_abi.params("asc_nn_conv_params", input_offset=7, output_offset=-3, stride=(2, 1), padding=(1, 0),
                     dilation=(1, 1), activation=(-128, 100))
    init = c_abi.initializer(p)
    assert init.startswith("{.input_offset = 7, .output_offset = -3, .stride = {.h = 2, .w = 1}")
    out = _run_c(tmp_path, f"const asc_nn_conv_params p = {init};\n"
                           'printf("%d %d %d %d %d %d\\n", (int)p.input_offset, (int)p.output_offset, '
                           "(int)p.stride.h, (int)p.stride.w, (int)p.padding.h, (int)p.activation.max);")
    assert out.split() == ["7", "-3", "2", "1", "1", "100"]
    assert c_abi.to_ctypes(p).stride.h == 2


def test_unknown_or_missing_fields_are_errors():
    with pytest.raises(TypeError, match="unknown field"):
        c_abi.params("asc_nn_pool_params", filter=(2, 2), stride=(2, 2), padding=(0, 0), activation=(-128, 127),
                     bogus=1)
    with pytest.raises(TypeError, match="missing field 'activation'"):
        c_abi.params("asc_nn_pool_params", filter=(2, 2), stride=(2, 2), padding=(0, 0))


def test_shared_constants_come_from_the_header():
    assert c_abi.define("ASC_PW_MAX_K") == 128
    from asc_edge.errors import ExportError

    with pytest.raises(ExportError):
        c_abi.define("ASC_NO_SUCH_CONSTANT")
