"""The confusion matrix and the misclassified samples: counted right, bounded, plain data that
round-trips the protocol (and a malformed one refused), kept in the run directory, drawn in the
terminal with half blocks."""

from __future__ import annotations

import base64
import json

import pytest
import torch
from rich.color import Color

from tui_train.core import events as E
from tui_train.core import protocol as P
from tui_train.core.config import AugmentConfig
from tui_train.core.run.runlog import MISTAKES_NAME, RunLog
from tui_train.core.rundir.history import read_history
from tui_train.core.train.data import TensorData
from tui_train.core.train.evaluation import evaluate
from tui_train.core.train.metrics import ClassificationAccumulator, MistakeCollector, confusion_event, to_uint8_image
from tui_train.tui.halfblock import UPPER_HALF, half_block
from tui_train.tui.widgets.confusion_grid import cell_style, confusion_text, recalls
from tui_train.tui.widgets.mistake_gallery import gallery_text


def roundtrip(event: E.Event) -> E.Event:
    line = P.encode(P.event_message(event, 1))
    back, _ = P.event_from_message(P.decode(line, limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES))
    return back


def image_item(h=2, w=2, c=1, true=0, pred=1, **over) -> dict:
    item = {"index": 0, "true": true, "pred": pred, "height": h, "width": w, "channels": c,
            "pixels": base64.b64encode(bytes(i % 256 for i in range(h * w * c))).decode()}
    item.update(over)
    return item


# -- counting --------------------------------------------------------------------------------------
def test_confusion_matrix_matches_a_hand_count():
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    preds = torch.tensor([0, 1, 0, 1, 2, 2, 2, 0, 2])
    acc = ClassificationAccumulator(3, torch.device("cpu"))
    logits = torch.nn.functional.one_hot(preds, 3).float()
    acc.update(logits[:4], targets[:4], torch.tensor(1.0))  # two batches, as an evaluation sends them
    acc.update(logits[4:], targets[4:], torch.tensor(1.0))
    metrics, cm = acc.compute()
    # rows = true class, columns = predicted, counted by hand from the pairs above
    assert cm == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert metrics["accuracy"] == pytest.approx(6 / 9)
    assert recalls(cm) == [pytest.approx(2 / 3), pytest.approx(1 / 2), pytest.approx(3 / 4)]


def test_evaluate_picks_the_mistakes_from_its_own_pass_bounded():
    torch.manual_seed(0)
    n = 100
    x = torch.rand(n, 1, 4, 4)
    y = torch.arange(n) % 2
    data = TensorData({"train": (x[:0], y[:0]), "val": (x, y), "test": (x[:0], y[:0])}, name="t", task="classification",
                      num_classes=2, input_shape=(1, 4, 4), class_names=["a", "b"], mean=[], std=[],
                      device=torch.device("cpu"), seed=0, augment=AugmentConfig())

    class AlwaysZero(torch.nn.Module):
        def forward(self, inp):
            return torch.tensor([[1.0, 0.0]]).expand(inp.shape[0], 2)

    collector = MistakeCollector(data.input_shape, data.mean, data.std)
    metrics, cm = evaluate(AlwaysZero(), data, lambda out, t, r: torch.nn.functional.cross_entropy(out, t, reduction=r),
                           "val", 16, torch.device("cpu"), mistakes=collector)
    assert cm == [[50, 0], [50, 0]] and metrics["accuracy"] == 0.5
    payload = collector.payload()
    assert len(payload) == E.MAX_MISTAKES  # 50 wrong, 32 kept
    assert [m["index"] for m in payload] == list(range(1, 64, 2))  # the first odd ones: every class-1 sample is wrong
    assert all(m["true"] == 1 and m["pred"] == 0 for m in payload)
    first = payload[0]
    pixels = base64.b64decode(first["pixels"])
    assert (first["height"], first["width"], first["channels"]) == (4, 4, 1)
    assert list(pixels) == (x[1, 0] * 255).round().to(torch.uint8).flatten().tolist()  # [0, 1] values scaled, not stretched


def test_images_are_downsampled_and_tabular_data_sends_features():
    rgb = torch.rand(3, 32, 32)
    assert tuple(to_uint8_image(rgb, E.MAX_IMAGE_SIDE).shape) == (16, 16, 3)  # 32 > 28: averaged 2x2
    gray = torch.full((1, 60, 30), 128.0)  # in [0, 255]: kept
    img = to_uint8_image(gray, E.MAX_IMAGE_SIDE)
    assert tuple(img.shape) == (20, 10, 1) and int(img.max()) == 128
    wide = torch.tensor([[[-2.0, 0.0, 2.0]]])  # any other range is stretched to [0, 255]
    assert to_uint8_image(wide, 28).flatten().tolist() == [0, 128, 255]

    c = MistakeCollector((40,), [1.0] * 40, [2.0] * 40, limit=5)
    c.update(torch.zeros(8, 40), torch.tensor([[0.0, 1.0]]).expand(8, 2), torch.zeros(8, dtype=torch.long))
    payload = c.payload()
    assert len(payload) == 5 and all("pixels" not in m for m in payload)
    assert payload[0]["features"] == [1.0] * E.MAX_FEATURES  # unnormalised (0 * 2 + 1), the first 16 only


def test_more_classes_than_the_limit_send_no_matrix():
    n = E.MAX_CONFUSION_CLASSES + 1
    ev = confusion_event(3, 0, [[0] * n for _ in range(n)], [str(i) for i in range(n)], ())
    assert ev.num_classes == n and ev.confusion == () and ev.classes == ()
    assert roundtrip(ev) == ev
    named = confusion_event(3, 0, [[1, 0], [0, 1]], ["a\x00b", "x" * 100], ())
    assert named.classes == ("a b", "x" * 64)  # control characters and long names made safe to send


# -- the protocol ----------------------------------------------------------------------------------
def test_the_event_with_mistakes_round_trips_the_protocol():
    ev = E.ConfusionMatrix(step=7, epoch=1, num_classes=3, confusion=((4, 1, 0), (0, 5, 0), (2, 0, 3)),
                           classes=("cat", "dog", "bird"),
                           mistakes=tuple(image_item(28, 28, 3, index=i, true=2, pred=0) for i in range(E.MAX_MISTAKES)))
    line = P.encode(P.event_message(ev, 1))
    assert len(line) < 150_000  # 32 RGB images at the largest size: well under the line limit
    assert roundtrip(ev) == ev
    feats = E.ConfusionMatrix(step=1, epoch=0, num_classes=2, confusion=((1, 1), (0, 2)),
                              mistakes=({"index": 1, "true": 0, "pred": 1, "features": [0.5, -1.0]},))
    assert roundtrip(feats) == feats


def _event(**over) -> dict:
    body = {"event": "ConfusionMatrix", "step": 1, "epoch": 0, "num_classes": 2, "confusion": [[1, 1], [0, 2]],
            "classes": ["a", "b"], "mistakes": [image_item()]}
    body.update(over)
    return {"v": 1, "type": "event", "seq": 1, "event": body}


@pytest.mark.parametrize(("over", "says"), [
    ({"mistakes": [image_item()] * (E.MAX_MISTAKES + 1)}, "over the limit of 32"),
    ({"mistakes": [image_item(pixels="AAAA")]}, "must be base64 of 4 bytes"),
    ({"mistakes": [image_item(pixels="AAAAAA")]}, "must be base64 of 4 bytes"),
    ({"mistakes": [image_item(pixels="AAA*AA==")]}, "not valid base64"),
    ({"mistakes": [image_item(pixels="AAAAAAA=")]}, "holds 5 bytes, the shape 4"),
    ({"mistakes": [image_item(h=29)]}, "height must be an integer in [1, 28]"),
    ({"mistakes": [image_item(c=2)]}, "channels must be 1 or 3"),
    ({"mistakes": [image_item(true=2)]}, "not below num_classes"),
    ({"mistakes": [image_item(extra=1)]}, "unknown key"),
    ({"mistakes": [{**image_item(), "features": [1.0]}]}, "an image (height, width, channels, pixels) or features"),
    ({"mistakes": [{"index": 0, "true": 0, "pred": 1, "features": [1.0] * 17}]}, "over the limit of 16"),
    ({"mistakes": [{"index": -1, "true": 0, "pred": 1, "features": []}]}, "index must be an integer"),
    ({"mistakes": ["x"]}, "must be a JSON object"),
    ({"confusion": [[1, 1], [0]]}, "must be square"),
    ({"confusion": [[1, -1], [0, 2]]}, "negative count"),
    ({"confusion": [[1]]}, "1 rows for 2 classes"),
    ({"classes": ["a", "b\x07"]}, "control character"),
])
def test_a_malformed_event_is_refused_with_a_reason(over, says):
    with pytest.raises(P.ProtocolError) as err:
        P.event_from_message(_event(**over))
    assert says in str(err.value)


# -- the run directory -----------------------------------------------------------------------------
def test_mistakes_json_keeps_the_latest_and_history_puts_it_back(tmp_path):
    log = RunLog(tmp_path)
    log.open("")
    first = E.ConfusionMatrix(step=1, epoch=0, num_classes=2, confusion=((1, 1), (0, 2)), mistakes=(image_item(),))
    second = E.ConfusionMatrix(step=2, epoch=1, num_classes=2, confusion=((2, 0), (1, 1)),
                               mistakes=(image_item(true=1, pred=0, index=5),))
    log.write(first)
    log.write(second)
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert [(r["step"], r["mistakes"]) for r in lines] == [(1, []), (2, [])]  # the JSONL files do not grow a gallery per epoch
    saved = json.loads((tmp_path / MISTAKES_NAME).read_text())
    assert saved["seq"] == 2 and saved["mistakes"][0]["index"] == 5
    history = [e for e in read_history(tmp_path) if isinstance(e, E.ConfusionMatrix)]
    assert history == [E.ConfusionMatrix(step=1, epoch=0, num_classes=2, confusion=((1, 1), (0, 2))), second]
    # a hostile mistakes.json: the matrix alone
    (tmp_path / MISTAKES_NAME).write_text(json.dumps({"seq": 2, "mistakes": [image_item(h=99)]}))
    assert [e.mistakes for e in read_history(tmp_path) if isinstance(e, E.ConfusionMatrix)] == [(), ()]
    # a stale one (another validation's): the matrix alone
    (tmp_path / MISTAKES_NAME).write_text(json.dumps({"seq": 1, "mistakes": [image_item()]}))
    assert [e.mistakes for e in read_history(tmp_path) if isinstance(e, E.ConfusionMatrix)] == [(), ()]


# -- drawing ---------------------------------------------------------------------------------------
def _cells(text):
    """(character, fg, bg) for each cell of a rendered Text, by line."""
    out = []
    for line in text.split("\n"):
        row = []
        for span in line.spans:
            for ch in line.plain[span.start:span.end]:
                style = span.style
                row.append((ch, style.color.get_truecolor() if style.color else None,
                            style.bgcolor.get_truecolor() if style.bgcolor else None))
        out.append(row)
    return out


def test_half_blocks_draw_a_known_digit():
    # a 3x4 "1": a vertical stroke with a flag; one character row per two pixel rows
    one = [[0, 255, 0],
           [255, 255, 0],
           [0, 255, 0],
           [0, 255, 0]]
    text = half_block(bytes(v for row in one for v in row), height=4, width=3)
    assert text.plain == f"{UPPER_HALF * 3}\n{UPPER_HALF * 3}"
    black, white = (0, 0, 0), (255, 255, 255)
    assert _cells(text) == [
        [(UPPER_HALF, black, white), (UPPER_HALF, white, white), (UPPER_HALF, black, black)],  # rows 0 (fg) and 1 (bg)
        [(UPPER_HALF, black, black), (UPPER_HALF, white, white), (UPPER_HALF, black, black)],  # rows 2 and 3
    ]


def test_half_blocks_rgb_odd_height_and_scale():
    red_green = bytes([255, 0, 0, 0, 255, 0])  # 1x2 RGB: red, green
    text = half_block(red_green, height=1, width=2, channels=3)
    assert _cells(text) == [[(UPPER_HALF, (255, 0, 0), None), (UPPER_HALF, (0, 255, 0), None)]]  # odd row: no background
    big = half_block(bytes([9]), 1, 1, scale=2)  # one pixel drawn 2x2: one row of two characters
    assert _cells(big) == [[(UPPER_HALF, (9, 9, 9), (9, 9, 9))] * 2]
    with pytest.raises(ValueError, match="3 bytes for a 2x2x1 image"):
        half_block(bytes(3), 2, 2)


def test_gallery_labels_true_and_predicted_and_wraps_to_the_width():
    items = [image_item(8, 8, 1, true=0, pred=1) for _ in range(4)]
    wide = gallery_text(items, ("cat", "dog"), 200)
    narrow = gallery_text(items, ("cat", "dog"), 20)
    assert "cat → dog" in wide.plain and wide.plain.count(UPPER_HALF) == 4 * 16 * 8  # 8x8 drawn 2x: 16 columns, 8 rows
    assert len(wide.split("\n")) == 1 + 8  # one row of tiles: the label and 8 lines of half blocks
    assert len(narrow.split("\n")) == 4 * 9 + 3  # one tile a row, a blank line between rows
    feats = gallery_text([{"index": 3, "true": 1, "pred": 0, "features": [0.5, 2.0]}], ("cat", "dog"), 80)
    assert "not an image dataset" in feats.plain and "dog → cat" in feats.plain and "0.5, 2" in feats.plain


def test_grid_colours_by_share_of_the_row_and_handles_100_classes():
    text = confusion_text([[8, 2], [0, 0]], ("cat", "dog"))
    assert "cat" in text.plain and "80.0%" in text.plain and "   -" in text.plain  # no dog sample: no recall
    def bg(count, diagonal):
        return cell_style(count, 10, diagonal).bgcolor.get_truecolor()
    assert bg(10, True).green > bg(8, True).green > bg(2, True).green > bg(0, True).green  # by share of the row
    assert bg(8, False).red > bg(2, False).red > bg(0, False).red and bg(8, False).green < 60  # off the diagonal: red
    assert bg(0, True) == bg(0, False) == Color.from_rgb(30, 30, 30).get_truecolor()
    n = 100
    many = confusion_text([[5 if i == j else 1 for j in range(n)] for i in range(n)], [f"class-{i}" for i in range(n)])
    lines = many.plain.split("\n")
    assert len(lines) == n + 2 and "class-99" in lines[-1] and lines[-1].rstrip().endswith("%")


def test_class_names_that_only_repeat_the_index_get_no_column():
    plain = confusion_text([[3, 1], [0, 4]], ("0", "1")).plain.split("\n")
    assert plain[2].split() == ["0", "3", "1", "75.0%"] and plain[3].split() == ["1", "0", "4", "100.0%"]
    assert plain[1].split() == ["0", "1", "recall"] and plain[1].index("0") == plain[2].index("3")  # headers over counts
    # MNIST's names repeat the index too ("0 - zero"): the row reads "0 zero", not "0 0 - zero" (issue 20 defect 9)
    named = confusion_text([[3, 1], [0, 4]], ("0 - zero", "1 - one")).plain.split("\n")
    assert named[2].split()[:3] == ["0", "zero", "3"] and named[3].split()[:3] == ["1", "one", "0"]
    assert confusion_text([[1, 0], [0, 1]], ("0: cat", "1_dog")).plain.split("\n")[3].split()[:2] == ["1", "dog"]
    others = confusion_text([[1, 0], [0, 1]], ("T-shirt/top", "10 - ten")).plain.split("\n")  # no index prefix: kept
    assert others[2].split()[:2] == ["0", "T-shirt/top"] and others[3].split()[:4] == ["1", "10", "-", "ten"]


# -- the engine ------------------------------------------------------------------------------------
def test_the_engine_sends_the_matrix_and_real_mistakes_at_each_validation(tmp_path):
    from tests.unit.test_engine import Run, tiny

    r = Run(tiny(train__epochs=1, model__hidden=[4], optim__lr=0.01), tmp_path)  # barely trained: many mistakes
    events = r.finish()
    started = events[0]
    (cm,) = r.of(E.ConfusionMatrix)
    assert cm.step == started.steps_per_epoch and cm.epoch == 0 and cm.num_classes == 10
    assert cm.classes == tuple(str(i) for i in range(10))
    assert sum(map(sum, cm.confusion)) == started.val_size
    wrong = started.val_size - sum(cm.confusion[i][i] for i in range(10))
    assert len(cm.mistakes) == min(E.MAX_MISTAKES, wrong) > 0
    _, y_val = r.trainer.p.rt.data.tensors("val")
    for m in cm.mistakes:
        assert m["true"] == int(y_val[m["index"]]) != m["pred"]
        assert (m["height"], m["width"], m["channels"]) == (8, 8, 1)  # digits: 8x8 grayscale, not downsampled
        assert cm.confusion[m["true"]][m["pred"]] > 0
    assert roundtrip(cm) == cm
    run_dir = tmp_path / "runs" / next((tmp_path / "runs").iterdir()).name
    assert [e for e in read_history(run_dir) if isinstance(e, E.ConfusionMatrix)] == [cm]  # a replay or a late viewer sees it
