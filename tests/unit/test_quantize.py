"""INT8 static quantisation (scalezero.quantize) on a small real graph, and yolo-detect's model_variant."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from fixtures.yolo_support import DETECT_DIR, load_handler
from scalezero import quantize
from scalezero.errors import ConfigError


def small_convnet(path, rng):
    """images (1, 3, 32, 32) -> Conv 3x3 -> Relu -> Conv 1x1 -> output0 (1, 4, 32, 32)."""
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["images", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["output0"])]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4, 32, 32])],
                              initializer=[w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_quantised_graph_is_qdq_and_close_to_fp32(tmp_path):
    rng = np.random.default_rng(0)
    src, dst = tmp_path / "small.onnx", tmp_path / "small.int8.onnx"
    small_convnet(src, rng)
    image = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    inputs = [quantize.letterbox(v, 32) for v in quantize.variants(image)]
    assert len(inputs) == 8 and inputs[0].shape == (1, 3, 32, 32) and inputs[0].dtype == np.float32
    quantize.quantize(src, dst, inputs)
    ops = {n.op_type for n in onnx.load(dst).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    fp32 = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    a, b = (s.run(None, {"images": inputs[3]})[0] for s in (fp32, int8))
    assert not np.array_equal(a, b)  # really quantised
    assert np.abs(a - b).max() <= 0.05 * (a.max() - a.min())  # and still the same function


def test_the_tail_after_the_last_convolution_stays_float(tmp_path):
    rng = np.random.default_rng(1)
    src, dst = tmp_path / "small.onnx", tmp_path / "small.int8.onnx"
    small_convnet(src, rng)
    model = onnx.load(src)
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}"
    assert quantize.tail_nodes(model) == ["n2"]  # the last Conv: nothing convolves after it
    image = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    quantize.quantize(src, dst, [quantize.letterbox(v, 32) for v in quantize.variants(image)])
    graph = onnx.load(dst).graph
    producer = {o: n for n in graph.node for o in n.output}
    assert producer["output0"].op_type == "Conv"  # not followed by a QuantizeLinear/DequantizeLinear pair
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    assert producer[first_conv.input[0]].op_type == "DequantizeLinear"  # the first one is quantised


def test_letterbox_pads_grey_and_keeps_the_aspect_ratio():
    x = quantize.letterbox(Image.new("RGB", (64, 32), (255, 0, 0)), 32)
    assert np.allclose(x[0, :, 0, 0], 114 / 255) and np.allclose(x[0, :, 16, 16], [1, 0, 0])


def test_calibration_folder_must_hold_images(tmp_path):
    with pytest.raises(ConfigError, match="no .jpg"):
        quantize.folder_images(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        quantize.folder_images(tmp_path / "missing")
    assert all(p.suffix == ".jpg" for p in quantize.default_images())  # Ultralytics' samples


def test_model_variant_picks_the_int8_file_and_rejects_unknown_ones(tmp_path):
    handler = load_handler(DETECT_DIR, tag="variant")
    assert handler.variant_path(tmp_path / "m.onnx", "int8") == tmp_path / "m.int8.onnx"
    assert handler.variant_path(tmp_path / "m.onnx", "fp32") == tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="model_variant = 'int4', must be one of fp32, int8"):
        handler.Config.from_env({"model_variant": "int4"})
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="model export --int8"):
        handler.Config.from_env({"model_variant": "int8", "MODEL_PATH": str(tmp_path / "m.onnx")})
