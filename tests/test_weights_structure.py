"""Structural checks of model files (interactive_eyes.weights_structure) against files written by
the libraries that own each format (torch.save, safetensors, zipfile, json), whole and damaged."""

from __future__ import annotations

import json
import zipfile

import pytest

from interactive_eyes.weights_structure import protobuf_problem, structure_problem


@pytest.fixture(autouse=True)
def _registry_as_users_see_it(no_face_model_env):
    """These tests read the registry's own state for face_landmarker: no test-wide override."""


def _damaged(tmp_path, name, data, how):
    p = tmp_path / name
    p.write_bytes({"whole": data, "truncated": data[: len(data) * 2 // 3], "zero": bytes(len(data)),
                   "empty": b""}[how])
    return p


@pytest.mark.parametrize("how, expected", [
    ("whole", None),
    ("truncated", "not a valid torch file: not a readable zip archive"),
    ("zero", "not a valid torch file: neither a torch zip archive nor a pickle (starts with 00000000)"),
    ("empty", "not a valid torch file: neither a torch zip archive nor a pickle (starts with nothing)"),
])
def test_torch_zip_files(tmp_path, how, expected):
    torch = pytest.importorskip("torch")
    src = tmp_path / "src.pth"
    torch.save({"w": torch.arange(5000, dtype=torch.float32)}, src)
    problem = structure_problem(_damaged(tmp_path, "m.pth", src.read_bytes(), how))
    assert problem == expected if expected is None else problem.startswith(expected)


def test_legacy_torch_pickle_header_is_accepted_and_text_is_not(tmp_path):
    torch = pytest.importorskip("torch")
    legacy = tmp_path / "legacy.pth.tar"
    torch.save({"w": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:2] == b"\x80\x02" and structure_problem(legacy) is None
    html = tmp_path / "page.bin"
    html.write_bytes(b"<html>")
    assert structure_problem(html) == "not a valid torch file: neither a torch zip archive nor a pickle " \
                                      "(starts with 3c68746d)"


@pytest.mark.parametrize("how", ["whole", "truncated", "zero"])
def test_safetensors(tmp_path, how):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save

    data = save({"a": torch.ones(100), "b": torch.zeros(7, 3)})
    problem = structure_problem(_damaged(tmp_path, "m.safetensors", data, how))
    if how == "whole":
        assert problem is None
    elif how == "truncated":
        header = int.from_bytes(data[:8], "little")
        # 100 + 21 float32 = 484 bytes of tensors; two thirds of the file leave fewer
        assert problem == f"not a valid safetensors file: tensors end at byte 484 of a " \
                          f"{len(data) * 2 // 3 - 8 - header}-byte data section (truncated or padded)"
    else:
        # a zero header length leaves an empty JSON header
        assert problem.startswith("not a valid safetensors file: bad safetensors header (Expecting value")


def test_zip_task_bundle_and_json(tmp_path):
    task = tmp_path / "face_landmarker.task"
    with zipfile.ZipFile(task, "w") as zf:
        zf.writestr("face_detector.tflite", b"x" * 5000)
    assert structure_problem(task) is None
    assert structure_problem(_damaged(tmp_path, "t.task", task.read_bytes(), "truncated")).startswith(
        "not a valid zip file: not a readable zip archive")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"dim": 1536, "layers": 30}))
    assert structure_problem(cfg) is None
    assert structure_problem(_damaged(tmp_path, "c.json", cfg.read_bytes(), "truncated")).startswith(
        "not a valid JSON file: not valid JSON (")
    assert structure_problem(tmp_path / "spiece.model") is None  # no check for this extension


def test_protobuf_walk_on_a_message_built_by_protobuf_itself(tmp_path):
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2

    msg = descriptor_pb2.FileDescriptorProto(name="x.proto", package="p", dependency=["a", "b"])
    msg.message_type.add(name="M").field.add(name="f", number=1, type=1)
    data = msg.SerializeToString()
    p = tmp_path / "m.pb"
    p.write_bytes(data)
    assert protobuf_problem(p) is None
    assert protobuf_problem(p, {1: "name", 99: "nothing"}) == "required field(s) missing: nothing (99)"
    p.write_bytes(data[:-1])
    # the last field is message_type (4): tag at byte len-2-len(M), payload one byte short
    m_len = len(msg.message_type[0].SerializeToString())
    start = len(data) - m_len - 2
    assert protobuf_problem(p) == f"truncated: field 4 at byte {start} needs {m_len} bytes, {m_len - 1} left " \
                                  f"(file is {len(data) - 1} bytes)"
