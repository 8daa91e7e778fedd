"""`export.npu_report`: the MediaTek NPU check of a bundle's .tflite files.

The shared tiny bundle is not NPU-clean (SIN / COS of the timestep embedding in the UNet, the token
lookup and the causal-mask select in the text encoder); hand-made flatbuffers cover what the tiny
export has none of (composites, int16 and int64 tensors, quantized graphs, the op limit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from flatbuffers import flexbuffers

from export.npu_report import REPORT_JSON, REPORT_MD, ReportOptions, analyze_file, load_target, main, npu_report

OPS = {k: v for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPES = {k: v for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _tensor(name, type_="FLOAT32", scales=None, zero_points=None, buffer=0, shape=(1, 4)):
    t = schema.TensorT()
    t.name, t.type, t.shape, t.buffer = name, TYPES[type_], list(shape), buffer
    if scales is not None:
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale = list(scales)
        t.quantization.zeroPoint = list(zero_points or [0] * len(scales))
    return t


def write_tflite(path: Path, graphs: list[tuple[list, list]], constants: dict[int, bytes] | None = None) -> Path:
    """A flatbuffer by hand: `graphs` = [(tensors, ops)], op = (NAME, inputs, outputs[, composite]) with
    composite = (name, attributes, decomposition subgraph); `constants`: buffer index -> bytes."""
    model = schema.ModelT()
    model.version = 3
    constants = constants or {}
    model.buffers = [schema.BufferT() for _ in range(1 + max(constants, default=0))]
    for index, data in constants.items():
        model.buffers[index].data = list(data)
    names = sorted({op[0] for _, ops in graphs for op in ops})
    model.operatorCodes = []
    for name in names:
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = OPS[name], min(OPS[name], 127), 1
        model.operatorCodes.append(code)
    model.subgraphs = []
    for tensors, ops in graphs:
        g = schema.SubGraphT()
        g.tensors, g.inputs, g.outputs, g.operators = tensors, [0], [len(tensors) - 1], []
        for name, inputs, outputs, *composite in ops:
            op = schema.OperatorT()
            op.opcodeIndex, op.inputs, op.outputs = names.index(name), list(inputs), list(outputs)
            if composite:
                cname, attributes, decomposition = composite[0]
                options = schema.StableHLOCompositeOptionsT()
                options.name, options.decompositionSubgraphIndex = cname, decomposition
                options.compositeAttributes = list(flexbuffers.Dumps(attributes))
                op.builtinOptions2Type = schema.BuiltinOptions2.StableHLOCompositeOptions
                op.builtinOptions2 = options
            g.operators.append(op)
        model.subgraphs.append(g)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


@pytest.fixture(scope="module")
def target():
    return load_target()


# --- the plugin's data ------------------------------------------------------------------------------------


def test_the_plugin_data_names_its_source_and_real_ops(target):
    assert target.source["repository"] == "google-ai-edge/LiteRT"
    assert len(target.source["commit"]) == 40
    assert "compiler_plugin.cc" in target.source["paths"]["supported_ops"]
    assert {"CONV_2D", "BATCH_MATMUL", "SOFTMAX", "STABLEHLO_COMPOSITE"} <= target.supported_ops
    assert not {"SIN", "COS", "BROADCAST_TO", "EMBEDDING_LOOKUP", "SELECT_V2", "GATHER"} & target.supported_ops
    assert target.composites == {"odml.rms_norm", "odml.l2_norm"}
    assert {"mt6989", "mt6991"} <= set(target.soc_models) and target.default_max_ops == 4000


def test_the_report_imports_no_torch():
    code = "import sys, export.npu_report; print(','.join(m for m in ('torch', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- the shared tiny bundle -------------------------------------------------------------------------------


def test_tiny_bundle_is_not_npu_clean(tiny_bundle):
    report = npu_report(ReportOptions(tiny_bundle))
    files = {f["stage"]: f for f in report["files"]}
    assert list(files) == ["text_encoder", "vae_encoder", "unet", "vae_decoder"]
    unet, text = files["unet"], files["text_encoder"]
    assert unet["unsupported"] == {"SIN": 1, "COS": 1, "BROADCAST_TO": 3}
    assert text["unsupported"] == {"EMBEDDING_LOOKUP": 1, "SELECT_V2": 1}
    assert files["vae_encoder"]["clean"] and files["vae_decoder"]["clean"]
    assert not report["clean"] and not unet["clean"] and not text["clean"]
    assert unet["ops"] == sum(unet["histogram"].values()) > 1000
    assert unet["histogram"]["RESHAPE"] > 0 and unet["histogram"]["TRANSPOSE"] > 0
    assert unet["ops"] <= report["max_ops_per_file"] and not unet["quantized"]
    assert 5e6 < unet["weight_bytes"] < (tiny_bundle / "unet.tflite").stat().st_size
    assert any("SIN x1" in r and r.startswith("unet.tflite") for r in report["reasons"])


def test_cli_writes_markdown_and_json(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(tiny_bundle), "--soc", "mt6991", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| unet.tflite |" in printed and "EMBEDDING_LOOKUP x1, SELECT_V2 x1" in printed
    assert (out / REPORT_MD).read_text(encoding="utf-8") == printed
    saved = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    assert saved["soc"]["name"] == "mt6991" and saved["clean"] is False
    assert main([str(tiny_bundle), "--out", str(out)]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([str(tiny_bundle), "--out", str(out), "--overwrite", "--json", "--quiet"]) == 0


def test_require_clean_fails_with_the_reasons(tiny_bundle, capsys):
    assert main([str(tiny_bundle), "--require-clean", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("failed: ") and "SIN x1" in err and "EMBEDDING_LOOKUP x1" in err


# --- hand-made flatbuffers --------------------------------------------------------------------------------


def test_composites_show_their_attributes_and_decompositions_are_not_counted(tmp_path, target):
    main_graph = (
        [_tensor("x"), _tensor("g"), _tensor("r")],
        [
            ("STABLEHLO_COMPOSITE", [0], [1], ("odml.group_norm", {"num_groups": 8, "epsilon": 1e-5}, 1)),
            ("STABLEHLO_COMPOSITE", [1], [2], ("odml.rms_norm", {"epsilon": 1e-6}, 2)),
        ],
    )
    decomposition = ([_tensor("a"), _tensor("b")], [("MEAN", [0], [1]), ("SIN", [1], [1]), ("RSQRT", [1], [1])])
    path = write_tflite(tmp_path / "norms.tflite", [main_graph, decomposition, decomposition])
    r = analyze_file(path, target)
    assert (r.ops, r.subgraphs) == (2, 1)
    assert r.unsupported == {"STABLEHLO_COMPOSITE odml.group_norm": 1}  # SIN of the decomposition is not run
    by_name = {c["name"]: c for c in r.composites}
    assert by_name["odml.group_norm"]["attributes"]["num_groups"] == 8
    assert not by_name["odml.group_norm"]["supported"] and by_name["odml.rms_norm"]["supported"]


def test_tensor_types_the_plugin_lacks(tmp_path, target):
    tensors = [
        _tensor("ids", "INT64"),  # an int64 activation
        _tensor("x", "INT16", scales=[0.1, 0.2], shape=(2, 4)),  # int16 per-channel activation
        _tensor("y", "INT16", scales=[0.1]),  # int16 per-tensor: fine
        _tensor("w", "INT64", buffer=1),  # an int64 constant: fine
        _tensor("out"),
    ]
    ops = [("CAST", [0], [4]), ("ADD", [1, 2], [2]), ("RESHAPE", [2, 3], [4])]
    path = write_tflite(tmp_path / "types.tflite", [(tensors, ops)], constants={1: np.arange(2, dtype=np.int64).tobytes()})
    r = analyze_file(path, target)
    assert r.unsupported == {}
    assert r.rejected == {
        "CAST: int64 activation (only int64 constants are taken, as int32)": 1,
        "ADD: int16 not per-tensor quantized (2 scales)": 1,
    }
    assert r.int16_not_per_tensor == ["x"] and r.weight_bytes == 16
    assert not r.clean and "1 int16 activation not per-tensor quantized" in r.reasons


def test_quantized_graph_counts_float_activations_and_quantize_ops(tmp_path, target):
    # float in, int8 inside, float out: the edges may be float
    tensors = [_tensor("x"), _tensor("q", "INT8", scales=[0.5]), _tensor("q2", "INT8", scales=[0.5]), _tensor("out")]
    ops = [("QUANTIZE", [0], [1]), ("ADD", [1, 1], [2]), ("DEQUANTIZE", [2], [3])]
    r = analyze_file(write_tflite(tmp_path / "q.tflite", [(tensors, ops)]), target)
    assert r.quantized and (r.quantize_ops, r.dequantize_ops, r.float_activations) == (1, 1, 0) and r.clean
    # an op left in float between DEQUANTIZE and QUANTIZE
    tensors = [_tensor("x"), _tensor("q", "INT16", scales=[0.5]), _tensor("f"), _tensor("f2"),
               _tensor("q2", "INT16", scales=[0.5]), _tensor("out")]
    ops = [("QUANTIZE", [0], [1]), ("DEQUANTIZE", [1], [2]), ("SIN", [2], [3]), ("QUANTIZE", [3], [4]), ("DEQUANTIZE", [4], [5])]
    r = analyze_file(write_tflite(tmp_path / "mixed.tflite", [(tensors, ops)]), target)
    assert (r.quantize_ops, r.dequantize_ops, r.float_activations) == (2, 2, 2)
    assert r.reasons == [
        "1 op the plugin does not take: SIN x1",
        "2 float activations inside a quantized graph (ops left in float)",
    ]


def test_op_limit(tmp_path, target):
    ops = [("ADD", [0, 0], [1])] * 5
    path = write_tflite(tmp_path / "many.tflite", [([_tensor("x"), _tensor("y")], ops)])
    assert analyze_file(path, target, max_ops=5).clean
    assert analyze_file(path, target, max_ops=4).reasons == ["5 ops, more than the 4 one compiled graph may hold"]


# --- bad inputs -------------------------------------------------------------------------------------------


def test_unknown_soc_is_one_line(tiny_bundle, capsys):
    assert main([str(tiny_bundle), "--soc", "mt1234"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown SoC 'mt1234': expected one of mt6853, ") and "mt6989" in err


@pytest.mark.parametrize("case", ["missing", "not_tflite", "garbage", "onnx_only", "max_ops", "out_is_bundle"])
def test_bad_inputs_exit_2(case, tiny_bundle, tmp_path, capsys):
    args = {
        "missing": [str(tmp_path / "nothing")],
        "not_tflite": [str(tiny_bundle / "manifest.json")],
        "max_ops": [str(tiny_bundle), "--max-ops-per-file", "0"],
        "out_is_bundle": [str(tiny_bundle), "--out", str(tiny_bundle)],
    }.get(case)
    if case == "garbage":
        (tmp_path / "x.tflite").write_bytes(b"not a flatbuffer at all")
        args = [str(tmp_path / "x.tflite")]
    if case == "onnx_only":
        manifest = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
        for record in manifest["stages"].values():
            record["targets"].pop("tflite")
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        args = [str(tmp_path / "b")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    expected = {
        "missing": "bundle not found", "not_tflite": "expected a bundle directory or a .tflite file",
        "garbage": "expected a TFLite flatbuffer", "onnx_only": "has no tflite files",
        "max_ops": "expected --max-ops-per-file >= 1", "out_is_bundle": "is a bundle",
    }[case]
    assert expected in err
