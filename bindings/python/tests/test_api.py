"""The Python API against the CLI (bit for bit), its errors, labels and preprocessing."""

import re
import subprocess
import threading

import numpy as np
import pytest

import incept
from conftest import REPO, write_pngs


def cli_run(incept_bin, model, x, tmp_path):
    """`incept run MODEL --input x.npy --output y.npy`, returning y."""
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [incept_bin, "run", str(model), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")],
        check=True,
    )
    return np.load(tmp_path / "y.npy")


@pytest.mark.parametrize(
    "source, batch",
    [
        ("nin_cifar10", 3),
        ("googlenet", 2),
        ("inception_v3", 1),
        (REPO / "tests/fixtures/inception_module.onnx", 2),
        ("nin_file", 4),
    ],
)
def test_outputs_equal_the_cli_bit_for_bit(source, batch, incept_bin, nin_file, tmp_path):
    source = nin_file if source == "nin_file" else source
    model = incept.Model(source)
    x = np.random.default_rng(1).standard_normal((batch, *model.input_shape)).astype(np.float32)
    expected = cli_run(incept_bin, source, x, tmp_path)
    for threads in (1, 2):
        session = model.session(threads=threads, batch=batch)
        y = session.run(x)
        assert y.dtype == np.float32 and y.shape == expected.shape
        assert np.array_equal(y, expected), f"{source}: threads={threads} differs from `incept run`"
    # A partial batch: the first images of a larger session are those of the full run.
    y = model.session(batch=batch + 2).run(x)
    assert np.array_equal(y, expected)
    # out=: filled in place and returned.
    out = np.full(expected.shape, np.nan, np.float32)
    assert model.session(batch=batch).run(x, out=out) is out
    assert np.array_equal(out, expected)


def test_info_matches_the_cli(incept_bin, nin_file):
    import json

    for source in ("googlenet", str(nin_file)):
        cli = json.loads(subprocess.run([incept_bin, "info", source, "--batch", "2", "--json"],
                                        check=True, capture_output=True, text=True).stdout)
        info = incept.Model(source).info(batch=2)
        for key in ("params", "macs", "arena_bytes", "weight_bytes", "mapped_weight_bytes"):
            assert info[key] == cli[key], key
        assert list(info["input_shape"]) == cli["input_shape"]
        assert list(info["output_shape"]) == cli["output_shape"]
        assert info["input_layout"] == "NCHW"
    # A model file's weights are mapped, a built-in model's on the heap.
    assert incept.Model(nin_file).info()["mapped_weight_bytes"] == incept.Model(nin_file).info()["weight_bytes"] > 0
    assert incept.Model("nin_cifar10").info()["mapped_weight_bytes"] == 0


def test_bad_inputs_raise_value_errors_naming_what_was_expected():
    s = incept.Model("nin_cifar10").session(batch=2)
    good = np.zeros((2, 3, 32, 32), np.float32)
    cases = [
        (good.astype(np.float64), r"float32 .*got dtype float64"),
        (good.astype(">f4"), r"float32"),
        (np.zeros((3, 3, 32, 32), np.float32), r"shape \(n <= 2, 3, 32, 32\), got shape \(3, 3, 32, 32\)"),
        (np.zeros((0, 3, 32, 32), np.float32), r"got shape \(0, 3, 32, 32\)"),
        (np.zeros((2, 3, 31, 32), np.float32), r"got shape \(2, 3, 31, 32\)"),
        (np.zeros((3, 32, 32), np.float32), r"got shape \(3, 32, 32\)"),
        (np.zeros((2, 32, 32, 3), np.float32), r"got shape \(2, 32, 32, 3\)"),
        (np.asfortranarray(good), r"non-C-contiguous"),
        (good[:, :, :, ::-1], r"non-C-contiguous"),
        (good.tolist(), r"not a numpy array"),
    ]
    for x, message in cases:
        with pytest.raises(ValueError, match=message):
            s.run(x)
    for out, message in [
        (np.zeros((2, 10), np.float64), r"out: .*float64"),
        (np.zeros((1, 10), np.float32), r"out: expected shape \(2, 10\), got \(1, 10\)"),
        (np.zeros((2, 10), np.float32)[:, ::2], r"out: .*(non-C-contiguous|shape)"),
    ]:
        with pytest.raises(ValueError, match=message):
            s.run(good, out=out)
    read_only = np.zeros((2, 10), np.float32)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="out: .*(writeable|read-only)"):
        s.run(good, out=read_only)
    assert not read_only.any(), "a read-only out was written"
    # The session still works after all of that.
    assert s.run(good).shape == (2, 10)


def test_bad_models_and_options_raise_with_the_engines_message(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model 'resnet50' \(built-in models: nin_cifar10, googlenet"):
        incept.Model("resnet50")
    with pytest.raises(incept.InceptError, match="(?i)no such file"):
        incept.Model(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07 not a protobuf \xff\xff")
    with pytest.raises(incept.InceptError, match="cannot import model"):
        incept.Model(garbage)
    with pytest.raises(incept.InceptError, match="unsupported"):
        incept.Model(REPO / "tests/fixtures/unsupported_hardswish.onnx")
    m = incept.Model("nin_cifar10")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        m.session(threads=0)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        m.session(batch=0)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        incept.Model.from_safetensors(tmp_path / "x.safetensors", "nope")
    # A state dict missing every tensor: the importer's message names one.
    header = b'{"unrelated.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    st = tmp_path / "x.safetensors"
    st.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    with pytest.raises(incept.InceptError, match="conv|weight"):
        incept.Model.from_safetensors(st, "nin_cifar10")
    existing = tmp_path / "existing.incept"
    existing.write_bytes(b"precious")
    with pytest.raises(ValueError, match="exists"):
        incept.convert("nin_cifar10", existing)
    assert existing.read_bytes() == b"precious"


def test_a_session_used_from_two_threads_at_once_raises_instead_of_crashing():
    model = incept.Model("googlenet")
    session = model.session(batch=2)
    x = np.random.default_rng(2).standard_normal((2, 3, 224, 224)).astype(np.float32)
    expected = session.run(x)
    outcomes = {"ok": 0, "busy": 0}
    lock = threading.Lock()

    def hammer(runs):
        for _ in range(runs):
            try:
                y = session.run(x)
            except RuntimeError as e:
                assert "another thread" in str(e)
                with lock:
                    outcomes["busy"] += 1
            else:
                assert np.array_equal(y, expected)
                with lock:
                    outcomes["ok"] += 1

    threads = [threading.Thread(target=hammer, args=(6,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes["ok"] + outcomes["busy"] == 18
    assert outcomes["ok"] >= 1 and outcomes["busy"] >= 1, outcomes
    assert np.array_equal(session.run(x), expected)


def test_labels_match_the_cli():
    assert len(incept.labels.imagenet) == 1000 and incept.labels.imagenet[0] == "tench"
    assert incept.labels.cifar10[3] == "cat"
    assert incept.labels.class_name(1001, 0) == "background"
    assert incept.labels.class_name(1001, 1) == "tench"
    assert incept.labels.class_name(7, 0) is None


def test_preprocess_takes_paths_bytes_pixels_and_pil_alike(tmp_path):
    from PIL import Image

    [path] = write_pngs(tmp_path, 1, seed=3)
    pil = Image.open(path)
    pixels = np.asarray(pil.convert("RGB"))
    for name in ("inception_v3", "googlenet_caffe", "nin_cifar10"):
        m = incept.Model(name)
        x = incept.preprocess(path, m)
        assert x.dtype == np.float32 and x.shape == (1, *m.input_shape)
        for other in (open(path, "rb").read(), pixels, pil, np.ascontiguousarray(pixels[:, ::-1])[:, ::-1]):
            assert np.array_equal(incept.preprocess(other, m), x)
        assert incept.preprocess([path, pixels], m).shape == (2, *m.input_shape)
    with pytest.raises(ValueError, match=r"uint8 pixel array .* got dtype float32"):
        incept.preprocess(pixels.astype(np.float32), "nin_cifar10")
    with pytest.raises(ValueError, match=r"got shape \(4, 4, 2\)"):
        incept.preprocess(np.zeros((4, 4, 2), np.uint8), "nin_cifar10")
    with pytest.raises(ValueError, match="missing.png"):
        incept.preprocess(tmp_path / "missing.png", "nin_cifar10")
    with pytest.raises(ValueError, match="unknown preprocessing 'vgg'"):
        incept.preprocess(path, "nin_cifar10", preset="vgg")
    with pytest.raises(ValueError, match=r"takes \[3, 32, 32\] input; the inception_v3 preprocessing makes"):
        incept.preprocess(path, "nin_cifar10", preset="inception_v3")


def test_classify_prints_what_the_cli_prints(incept_bin, tmp_path):
    paths = write_pngs(tmp_path, 5, seed=4)
    for model, batch in (("nin_cifar10", 2), ("googlenet", 3)):
        cli = subprocess.run([incept_bin, "classify", *paths, "--model", model, "--top", "3", "--batch", str(batch)],
                             check=True, capture_output=True, text=True).stdout
        text = ""
        for r in incept.classify(paths, model, top=3, batch=batch):
            text += f"{r.path}\n"
            for index, label, p in r.top:
                text += f"  {np.float32(100) * np.float32(p):>7.3f}%  {label} ({index})\n"
        assert text == cli
    [embedding] = incept.classify(paths[:1], "inception_resnet_v1")
    assert embedding.top == [] and embedding.embedding.shape == (512,)
    cli = subprocess.run([incept_bin, "classify", paths[0], "--model", "inception_resnet_v1"],
                         check=True, capture_output=True, text=True).stdout
    norm = float(re.search(r"L2 norm ([0-9.]+)", cli).group(1))
    assert abs(float(np.linalg.norm(embedding.embedding)) - norm) < 1e-3


def test_bf16_sessions_equal_the_cli_bit_for_bit(incept_bin, tmp_path):
    model = incept.Model("nin_cifar10")
    x = np.random.default_rng(2).standard_normal((2, *model.input_shape)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([incept_bin, "run", "nin_cifar10", "--input", str(tmp_path / "x.npy"),
                    "--output", str(tmp_path / "y.npy"), "--precision", "bf16"], check=True)
    expected = np.load(tmp_path / "y.npy")
    session = model.session(batch=2, precision="bf16")
    assert session.precision == "bf16"
    assert np.array_equal(session.run(x), expected)
    assert model.session().precision == "f32"
    f32 = model.session(batch=2, precision="f32").run(x)
    assert not np.array_equal(f32, expected), "BF16 rounds the operands: it differs from float32"
    with pytest.raises(ValueError, match="unknown precision 'f16'"):
        model.session(precision="f16")
    # A BF16 model file runs at BF16 by default, like the built-in model asked for BF16.
    incept.convert("nin_cifar10", tmp_path / "nin.bf16.incept", precision="bf16")
    from_file = incept.Model(tmp_path / "nin.bf16.incept")
    assert from_file.session(batch=2).precision == "bf16"
    assert np.array_equal(from_file.session(batch=2).run(x), expected)
    with pytest.raises(ValueError, match="runs only at precision bf16"):
        from_file.session(precision="f32")


def test_bf16x3_sessions_equal_the_cli_and_are_near_float32(incept_bin, tmp_path):
    model = incept.Model("nin_cifar10")
    x = np.random.default_rng(3).standard_normal((2, *model.input_shape)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([incept_bin, "run", "nin_cifar10", "--input", str(tmp_path / "x.npy"),
                    "--output", str(tmp_path / "y.npy"), "--precision", "bf16x3"], check=True)
    expected = np.load(tmp_path / "y.npy")
    session = model.session(batch=2, precision="bf16x3")
    assert session.precision == "bf16x3"
    assert np.array_equal(session.run(x), expected)
    f32 = model.session(batch=2, precision="f32").run(x)
    bf16 = model.session(batch=2, precision="bf16").run(x)
    # Split operands: far closer to float32 than rounded ones.
    assert np.abs(expected - f32).max() < np.abs(bf16 - f32).max() / 20
    incept.convert("nin_cifar10", tmp_path / "nin.bf16x3.incept", precision="bf16x3")
    from_file = incept.Model(tmp_path / "nin.bf16x3.incept")
    assert from_file.session(batch=2).precision == "bf16x3"
    assert np.array_equal(from_file.session(batch=2).run(x), expected)
