"""Which functions are pre-forked: annotations, and PyTorch never (fork-unsafe once its threads ran)."""

import pytest

from procs import REPO
from scalezero.backends.prefork import PREFORK, TEMPLATE, prefork_mode, torch_dependencies
from scalezero.errors import ConfigError
from scalezero.stack import function_from


def spec(folder, annotations=None):
    return function_from("f", {"handler": str(folder), "annotations": annotations or {}}, REPO)


@pytest.mark.parametrize("annotations, enabled, eager", [
    ({}, True, False),  # default: on, template at the first instance start
    ({TEMPLATE: "eager"}, True, True),  # template started at deploy
    ({PREFORK: "false"}, False, False),  # turned off
    ({PREFORK: "False", TEMPLATE: "eager"}, False, False),  # off wins, case-insensitive
])
def test_annotations_choose_the_mode(annotations, enabled, eager):
    mode = prefork_mode(spec(REPO / "functions" / "yolo-detect", annotations))
    assert (mode.enabled, mode.eager) == (enabled, eager)


@pytest.mark.parametrize("annotations, message", [
    ({PREFORK: "maybe"}, "scalezero.dev/prefork = 'maybe', must be true or false"),
    ({TEMPLATE: "sometimes"}, "scalezero.dev/prefork-template = 'sometimes', must be lazy or eager"),
])
def test_bad_annotations_say_what_is_allowed(annotations, message):
    with pytest.raises(ConfigError, match=message):
        prefork_mode(spec(REPO / "functions" / "yolo-detect", annotations))


def test_the_seed_handler_on_pytorch_is_never_forked():
    mode = prefork_mode(spec(REPO / "functions" / "yolo-ultralytics"))
    assert not mode.enabled and "torch" in mode.reason


def test_torch_is_found_in_requirements_or_preload(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy>=1\n# torch is not needed\nTorchVision==0.29.1\n")
    (tmp_path / "preload.txt").write_text("ultralytics.engine  # heavy\n")
    assert torch_dependencies(tmp_path) == {"torchvision", "ultralytics"}
    (tmp_path / "requirements.txt").write_text("onnxruntime\n")
    (tmp_path / "preload.txt").unlink()
    assert torch_dependencies(tmp_path) == set()
