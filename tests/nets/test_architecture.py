"""Architecture strings: parsing, shapes, the op sequence, input-shape inference, errors."""

from __future__ import annotations

import pytest

from bayesbin.nets.architecture import infer_image_shape, parse_architecture


def test_mlp():
    arch = parse_architecture("784-512-512-10")
    assert arch.input_shape == (784,) and not arch.is_image and arch.n_outputs == 10
    plan = arch.resolve((784,))
    assert [lay.name for lay in plan.layers] == ["dense1", "dense2", "dense3"]
    assert [lay.weight_shape for lay in plan.layers] == [(512, 784), (512, 512), (10, 512)]
    assert plan.layers[0].first and plan.layers[-1].output
    assert [op.kind for op in plan.ops] == ["dense", "batchnorm", "sign", "dense", "batchnorm",
                                            "sign", "dense", "batchnorm"]
    assert [op.kind for op in arch.resolve((784,), output_sign=True).ops][-1] == "sign"
    # image rows given to an MLP are flattened
    assert arch.resolve((28, 28, 1)).input_shape == (784,)


def test_paper_cnn():
    arch = parse_architecture("32C3-MP2-64C3-MP2-512FC-SM10")
    assert arch.is_image and arch.input_shape is None
    plan = arch.resolve((28, 28, 1))
    assert [lay.weight_shape for lay in plan.layers] == [
        (32, 1, 3, 3), (64, 32, 3, 3), (512, 3136), (10, 512)]
    assert [lay.out_shape for lay in plan.layers] == [(14, 14, 32), (7, 7, 64), (512,), (10,)]
    assert [op.kind for op in plan.ops] == [
        "conv2d", "maxpool2d", "batchnorm", "sign", "conv2d", "maxpool2d", "batchnorm", "sign",
        "flatten", "dense", "batchnorm", "sign", "dense", "batchnorm"]
    assert plan.layers[1].fan_in == 288 and plan.n_outputs == 10


def test_spelling_variants():
    a = parse_architecture("28x28x1-32c3-mp2-512fc-sm10")
    assert a.input_shape == (28, 28, 1)
    assert parse_architecture("28x28-8C3-10").input_shape == (28, 28, 1)
    assert parse_architecture(" 10-5 ").layers[0].size == 5
    single = parse_architecture("SM10")  # one binary output layer, input size from the data
    assert single.input_shape is None and single.resolve((30,)).layers[0].weight_shape == (10, 30)
    assert parse_architecture("10").layers == single.layers[:0] + (single.layers[0].__class__(
        "dense", 10, "10"),)
    assert parse_architecture(a) is a


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("784--10", "empty token"),
        ("28x28x1", "no layers"),
        ("784-12X-10", "'12X' at position 1 is not understood"),
        ("32C5-SM10", "not a 3x3"),
        ("32C3-MP2", "ends the network"),
        ("784-SM10-5", "not the last token"),
        ("784-512-MP2-10", "does not follow a convolution"),
        ("MP2-10", "does not follow a convolution"),
        ("784-512-32C3-10", "convolution after a dense"),
        ("784-0-10", "zero units"),
        ("32C3-MP1-10", "pool size below 2"),
        ("784-28x28-10", "not the first token"),
        ("0x28-10", "zero dimension"),
    ],
)
def test_malformed_strings(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_architecture(text)
    assert "grammar" in str(info.value)


def test_not_a_string():
    with pytest.raises(TypeError, match="architecture must be a string"):
        parse_architecture(784)


def test_shapes_that_do_not_fit():
    with pytest.raises(ValueError, match="declares input shape"):
        parse_architecture("784-10").resolve((100,))
    with pytest.raises(ValueError, match="needs image input"):
        parse_architecture("8C3-10").resolve((64,))
    with pytest.raises(ValueError, match="too small"):
        parse_architecture("8C3-MP2-MP2-MP2-10").resolve((4, 4, 1))
    with pytest.raises(ValueError, match="declares input shape"):
        parse_architecture("28x28x1-8C3-10").resolve((14, 14, 4))


def test_infer_image_shape():
    cnn = parse_architecture("8C3-MP2-10")
    assert infer_image_shape(784, cnn) == (28, 28, 1)
    assert infer_image_shape(3072, cnn) == (32, 32, 3)
    assert infer_image_shape(50, cnn, (5, 10)) == (5, 10, 1)
    assert infer_image_shape(100, parse_architecture("100-10")) == (100,)
    with pytest.raises(ValueError, match="not a square image"):
        infer_image_shape(100 + 1, cnn)
    with pytest.raises(ValueError, match=r"expects images of shape \(28, 28, 1\)"):
        infer_image_shape(100, parse_architecture("28x28x1-8C3-10"))
