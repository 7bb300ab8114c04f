"""Which nodes int8 quantisation leaves in fp32: the stem blocks and the head's decoding, for any head index."""

from __future__ import annotations

import pytest

from training.export import fp32_nodes

V8 = [  # a YOLOv8-shaped export: head at block 22
    ("/model.0/conv/Conv", "Conv"),
    ("/model.0/act/Mul", "Mul"),
    ("/model.2/cv1/conv/Conv", "Conv"),
    ("/model.3/conv/Conv", "Conv"),
    ("/model.12/Concat", "Concat"),
    ("/model.22/cv2.0/cv2.0.2/Conv", "Conv"),
    ("/model.22/dfl/Softmax", "Softmax"),
    ("/model.22/Concat_5", "Concat"),
]
V11 = [(n.replace("/model.22/", "/model.23/"), op) for n, op in V8]  # YOLO11: head at block 23


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        (
            V8,
            [
                "/model.0/conv/Conv",
                "/model.0/act/Mul",
                "/model.2/cv1/conv/Conv",
                "/model.22/dfl/Softmax",
                "/model.22/Concat_5",
            ],
        ),
        (
            V11,
            [
                "/model.0/conv/Conv",
                "/model.0/act/Mul",
                "/model.2/cv1/conv/Conv",
                "/model.23/dfl/Softmax",
                "/model.23/Concat_5",
            ],
        ),
        ([("Conv_0", "Conv"), ("Sigmoid_1", "Sigmoid")], []),  # not an Ultralytics export: nothing singled out
    ],
    ids=["yolov8", "yolo11", "foreign"],
)
def test_stem_and_head_decoding_stay_fp32_and_head_convs_do_not(nodes, expected):
    assert fp32_nodes(nodes) == expected
