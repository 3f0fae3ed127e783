"""The control endpoint's wire format: every command and event round-trips; hostile lines get a
ProtocolError with a reason and never anything else (fuzzed)."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import protocol as P
from tui_train.core.testing import sample_events

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NON_DEFAULT_ARGS = {
    "Stop": {"reason": "plateau – from ctl"},
    "Interrupt": {"reason": "maintenance"},
    "SetLearningRate": {"lr": 3e-4},
    "ScaleLearningRate": {"factor": 0.5},
    "SetHyperparameter": {"key": "momentum", "value": 0.95},
    "SaveCheckpoint": {"reason": "before-lr-change"},
    "Rollback": {"lr_factor": 0.25},
    "FindLearningRate": {"start_lr": 1e-6, "end_lr": 1.0, "steps": 50},
    "SetRunLength": {"key": "max_steps", "value": 900, "policy": "keep"},
    "AddBreakpoint": {"spec": "val_accuracy >= 0.98"},
    "ClearBreakpoints": {"id": 3},
}
"""Values other than the defaults, for every command that has fields."""


def client_line(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode() + b"\n"


def decode_client(line: bytes) -> dict:
    return P.decode(line, limit=P.MAX_CLIENT_LINE, allowed_types=P.CLIENT_TYPES)


def parse_command(line: bytes):
    return P.command_from_message(decode_client(line))


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN (at any depth)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return type(a) is type(b) and a == b


# -- round trips ---------------------------------------------------------------------------------
def test_every_command_has_non_default_values_here():
    with_fields = {cls.__name__ for cls in C.COMMAND_TYPES if dataclasses.fields(cls)}
    assert with_fields == set(NON_DEFAULT_ARGS), "a new command with fields: add its values to NON_DEFAULT_ARGS"


@pytest.mark.parametrize("cls", C.COMMAND_TYPES, ids=lambda c: c.__name__)
def test_every_command_round_trips(cls):
    command = cls(**NON_DEFAULT_ARGS.get(cls.__name__, {}))
    line = P.encode(P.command_message(command, request=17), limit=P.MAX_CLIENT_LINE)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back, request = parse_command(line)
    assert back == command and type(back) is cls and request == 17


def test_command_args_may_be_left_out_and_defaults_apply():
    assert parse_command(b'{"v":1,"type":"command","request":0,"command":"Pause"}') == (C.Pause(), 0)
    assert parse_command(b'{"v":1,"type":"command","request":1,"command":"Stop","args":{}}') == (C.Stop(), 1)


def test_int_for_a_float_argument_becomes_a_float():
    command, _ = parse_command(b'{"v":1,"type":"command","request":1,"command":"SetLearningRate","args":{"lr":1}}')
    assert command == C.SetLearningRate(lr=1.0) and type(command.lr) is float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_arguments_pass_through_for_the_engine_to_reject(value):
    command, _ = parse_command(P.encode(P.command_message(C.SetLearningRate(lr=value), 3)))
    assert same(command.lr, value)


def test_1e999_is_inf_not_an_error():
    command, _ = parse_command(b'{"v":1,"type":"command","request":1,"command":"ScaleLearningRate","args":{"factor":1e999}}')
    assert command.factor == math.inf


def extra_events() -> list[E.Event]:
    nan, inf = math.nan, math.inf
    return [
        E.StepMetrics(step=20, epoch=0, epoch_progress=0.2, loss=nan, lr=1e-3, samples_per_second=inf, accuracy=None, elapsed=0.2),
        E.StepMetrics(step=30, epoch=0, epoch_progress=0.3, loss=-inf, lr=1e-3, samples_per_second=1.0),
        E.EpochMetrics(epoch=1, step=200, train={"loss": nan}, val={"loss": inf, "nested": [1, {"a": -inf}]}, lr=5e-4,
                       seconds=1.0, patience_left=None),
        E.TestMetrics(metrics={"loss": 0.2, "accuracy": 0.9, "f1": nan}, confusion=((9, 1, 0), (2, 7, 1), (0, 0, 10))),
        E.TestMetrics(metrics={"mse": 0.1}),
        E.CommandApplied(command="SetHyperparameter", detail="patience 5 -> 7", step=3, key="patience", old=5, new=7,
                         origin="ctl-1"),
        E.SystemSample(step=5, cpu_percent=12.5, rss_bytes=1, mem_percent=3.0, mem_total_bytes=2),  # no GPU: None fields
        E.RunStarted(run_dir="/runs/caf\udcc3-\u00e9t\u00e9", preset="p", device="cpu", task="regression", epochs=1,
                     steps_per_epoch=1, total_steps=1, train_size=1, val_size=1, test_size=1, num_params=1, model="m"),
    ]


@pytest.mark.parametrize("event", sample_events() + extra_events(), ids=lambda e: e.kind)
def test_every_event_round_trips(event):
    line = P.encode(P.event_message(event, seq=42))
    msg = P.decode(line, limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES)
    back, seq = P.event_from_message(msg)
    assert seq == 42 and same(back, event), (back, event)


def test_sample_events_cover_every_event_type():
    assert {type(e) for e in sample_events()} == set(E.EVENT_TYPES)


def test_tuple_fields_come_back_as_tuples():
    started, confusion = sample_events()[0], E.TestMetrics(metrics={}, confusion=((1, 2), (3, 4)))
    for event in (started, confusion):
        back, _ = P.event_from_message(P.decode(P.encode(P.event_message(event, 1)), limit=P.MAX_SERVER_LINE,
                                                allowed_types=P.SERVER_TYPES))
        assert back == event
    assert isinstance(back.confusion, tuple) and all(isinstance(row, tuple) for row in back.confusion)


def test_event_fields_left_out_take_their_defaults():
    msg = {"v": 1, "type": "event", "seq": 5, "event": {"event": "CommandRejected", "command": "Pause", "reason": "no"}}
    assert P.event_from_message(msg) == (E.CommandRejected(command="Pause", reason="no"), 5)


def test_welcome_hello_bye_and_error_round_trip():
    wire = P.decode(P.encode(P.welcome("tui-2", "/runs/x", "running", 41)), limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES)
    assert P.welcome_from_message(wire) == P.Welcome("tui-2", "/runs/x", "running", 41)
    assert P.viewer_from_hello(decode_client(P.encode(P.hello("ctl"), limit=P.MAX_CLIENT_LINE))) == "ctl"
    assert decode_client(P.encode(P.bye())) == {"v": 1, "type": "bye"}
    err = P.decode(P.encode(P.error("bad\nthing", request=9)), limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES)
    assert P.error_from_message(err) == ("bad thing", 9)
    assert P.error_from_message(P.error("x")) == ("x", None)
    assert len(P.error("y" * 5000)["reason"]) == P.MAX_REASON_CHARS


def test_the_viewer_count_round_trips_and_a_bad_one_is_refused():
    wire = P.decode(P.encode(P.viewers(3)), limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES)
    assert P.viewers_from_message(wire) == 3
    assert P.viewers_from_message(P.viewers(0)) == 0  # only scripts (ctl) attached
    for bad in (-1, True, 2.0, "3", None, P.MAX_VIEWERS_REPORTED + 1):
        with pytest.raises(P.ProtocolError, match="viewers: count"):
            P.viewers_from_message({"v": 1, "type": "viewers", "count": bad})
    with pytest.raises(P.ProtocolError):
        P.viewers_from_message({"v": 1, "type": "viewers", "count": 2, "extra": 1})


def test_encode_is_compact_ascii_one_line_with_nan_tokens():
    line = P.encode({"v": 1, "type": "event", "x": [math.nan, math.inf], "s": "é\n"})
    assert line == b'{"v":1,"type":"event","x":[NaN,Infinity],"s":"\\u00e9\\n"}\n'


def test_crlf_is_accepted():
    assert decode_client(b'{"v":1,"type":"bye"}\r\n') == {"v": 1, "type": "bye"}


# -- hostile input: a ProtocolError with a reason ------------------------------------------------
def cmd(command="Pause", args=None, request=1, **extra) -> bytes:
    msg = {"v": 1, "type": "command", "request": request, "command": command, **extra}
    if args is not None:
        msg["args"] = args
    return client_line(msg)


HOSTILE = [
    ("oversized", b'{"v":1,"type":"bye","pad":"' + b"x" * P.MAX_CLIENT_LINE + b'"}\n', "over the limit"),
    ("invalid utf-8", b'{"v":1,"type":"bye","s":"\xff\xfe"}\n', "not UTF-8"),
    ("not json", b"hello there\n", "not valid JSON"),
    ("truncated json", b'{"v":1,"type":\n', "not valid JSON"),
    ("empty", b"\n", "empty line"),
    ("nul bytes", b"\x00\x00\x00\n", "not valid JSON"),
    ("array", b"[1,2]\n", "not an array"),
    ("number", b"42\n", "not a number"),
    ("string", b'"command"\n', "not a string"),
    ("null", b"null\n", "not null"),
    ("missing version", b'{"type":"bye"}\n', 'missing protocol version "v" (this endpoint speaks 1)'),
    ("wrong version", b'{"v":2,"type":"bye"}\n', "protocol version 2 is not supported (this endpoint speaks 1)"),
    ("version as string", b'{"v":"1","type":"bye"}\n', 'protocol version "1" is not supported'),
    ("version true", b'{"v":true,"type":"bye"}\n', "protocol version true is not supported"),
    ("version 1.0", b'{"v":1.0,"type":"bye"}\n', "protocol version 1.0 is not supported"),
    ("missing type", b'{"v":1}\n', 'missing message type "type"'),
    ("unknown type", b'{"v":1,"type":"exec"}\n', 'unknown message type "exec" (allowed: hello, command, bye)'),
    ("type not a string", b'{"v":1,"type":["hello"]}\n', "unknown message type an array"),
    ("server type from a client", b'{"v":1,"type":"event","seq":1,"event":{}}\n', 'unknown message type "event"'),
    ("two messages in a line", b'{"v":1,"type":"bye"}\n{"v":1,"type":"bye"}\n', "one message per line"),
    ("deep nesting", b"[" * 10000 + b"\n", "nested too deep"),
    ("deep nesting in an object", b'{"v":1,"type":"bye","x":' + b"[" * 5000 + b"]" * 5000 + b"}\n", "nested too deep"),
    ("int of 5000 digits", b'{"v":1,"type":"bye","x":' + b"9" * 5000 + b"}\n", "not valid JSON"),
    ("a BOM", b'\xef\xbb\xbf{"v":1,"type":"bye"}\n', "not valid JSON"),
]


@pytest.mark.parametrize(("line", "expected"), [(line, exp) for _, line, exp in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_lines_are_refused_with_a_reason(line, expected):
    with pytest.raises(P.ProtocolError) as info:
        parse_command(line)
    assert expected in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize("line", [b"[" * 100000, b'{"a":' * 100000, b"[" * 100000 + b"]" * 100000], ids=["open", "objects", "closed"])
def test_deep_nesting_within_the_server_limit_is_refused(line):
    with pytest.raises(P.ProtocolError, match="nested too deep"):
        P.decode(line, limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES)


@pytest.mark.parametrize(("line", "fatal"), [
    (b'{"v":1,"type":"bye","pad":"' + b"x" * P.MAX_CLIENT_LINE + b'"}', True),
    (b'{"type":"bye"}', True),
    (b'{"v":0,"type":"bye"}', True),
    (b"not json", False),
    (b'{"v":1,"type":"exec"}', False),
])
def test_fatal_marks_what_closes_the_connection(line, fatal):
    with pytest.raises(P.ProtocolError) as info:
        decode_client(line)
    assert info.value.fatal is fatal


def test_the_limit_excludes_the_newline():
    body = b'{"v":1,"type":"bye","p":"'
    line = body + b"x" * (P.MAX_CLIENT_LINE - len(body) - 2) + b'"}'
    assert len(line) == P.MAX_CLIENT_LINE
    assert decode_client(line + b"\r\n")["type"] == "bye"
    with pytest.raises(P.ProtocolError, match="over the limit"):
        decode_client(line[:-2] + b'x"}\n')


BAD_COMMANDS = [
    ("unknown command", cmd("FormatDisk"), "unknown command \"FormatDisk\" (allowed: Pause, Resume, Stop, Interrupt, "),
    ("command not a string", cmd(["Pause"]), "unknown command an array"),
    ("command missing", client_line({"v": 1, "type": "command", "request": 1}), "unknown command null"),
    ("extra arg", cmd("SetLearningRate", {"lr": 0.1, "momentum": 0.9}), "SetLearningRate: unknown argument \"momentum\" (allowed: lr)"),
    ("arg for a command without fields", cmd("Pause", {"now": True}), "Pause: unknown argument \"now\" (allowed: none)"),
    ("missing required arg", cmd("SetHyperparameter", {"key": "momentum"}), "SetHyperparameter: missing argument 'value'"),
    ("wrong arg type", cmd("SetLearningRate", {"lr": "0.1"}), "SetLearningRate: argument 'lr' must be a number, got \"0.1\""),
    ("null for float", cmd("SetLearningRate", {"lr": None}), "argument 'lr' must be a number, got null"),
    ("bool for float", cmd("ScaleLearningRate", {"factor": True}), "argument 'factor' must be a number, got true"),
    ("number for str", cmd("Stop", {"reason": 3}), "Stop: argument 'reason' must be a string, got 3"),
    ("too-long string", cmd("Stop", {"reason": "x" * 201}), "is 201 characters, over the limit of 200"),
    ("control character", cmd("Stop", {"reason": "a\nb"}), "control character"),
    ("lone surrogate", b'{"v":1,"type":"command","request":1,"command":"Stop","args":{"reason":"\\ud800"}}', "lone surrogate"),
    ("huge int for float", cmd("SetLearningRate", {"lr": 10**400}), "out of range"),
    ("args an array", b'{"v":1,"type":"command","command":"Pause","request":1,"args":[]}',
     "Pause: args must be a JSON object, not an array"),
    ("request missing", b'{"v":1,"type":"command","command":"Pause","args":[]}', "request must be an integer in [0, 2**53), got null"),
    ("request a string", cmd(request="1"), "request must be an integer in [0, 2**53), got \"1\""),
    ("request a float", cmd(request=1.0), "got 1.0"),
    ("request a bool", cmd(request=True), "got true"),
    ("request negative", cmd(request=-1), "got -1"),
    ("request too large", cmd(request=2**53), "got 9007199254740992"),
    ("unknown envelope key", cmd(arg={"lr": 1}), "command: unknown key \"arg\" (allowed: v, type, request, command, args)"),
    ("a hello is not a command", b'{"v":1,"type":"hello","viewer":"tui"}', "expected a command message, got \"hello\""),
]


@pytest.mark.parametrize(("line", "expected"), [(line, exp) for _, line, exp in BAD_COMMANDS], ids=[b[0] for b in BAD_COMMANDS])
def test_malformed_commands_are_refused_with_a_reason(line, expected):
    with pytest.raises(P.ProtocolError) as info:
        parse_command(line)
    assert expected in str(info.value)
    assert info.value.fatal is False and "\n" not in str(info.value)


def test_the_request_of_a_refused_command_travels_with_the_error():
    with pytest.raises(P.ProtocolError) as info:
        parse_command(cmd("FormatDisk", request=99))
    assert info.value.request == 99
    assert P.error(str(info.value), info.value.request)["request"] == 99
    with pytest.raises(P.ProtocolError) as info:
        parse_command(cmd(request=-5))
    assert info.value.request is None


@pytest.mark.parametrize(("viewer", "ok"), [("tui", True), ("ctl", True), ("my-script_2", True), ("", False), ("TUI", False),
                                            ("x" * 33, False), ("a b", False), (3, False), (None, False)])
def test_hello_viewer_kind_is_checked(viewer, ok):
    msg = {"v": 1, "type": "hello", "viewer": viewer}
    if ok:
        assert P.viewer_from_hello(msg) == viewer
    else:
        with pytest.raises(P.ProtocolError, match="hello: viewer must be a short kind"):
            P.viewer_from_hello(msg)


def event_msg(body, seq=1) -> dict:
    return {"v": 1, "type": "event", "seq": seq, "event": body}


BAD_EVENTS = [
    ("unknown event", {"event": "Exploded"}, "unknown event \"Exploded\""),
    ("no kind", {"step": 1}, "unknown event null"),
    ("unknown field", {"event": "RunNote", "message": "m", "colour": "red"}, "RunNote: unknown field \"colour\" (allowed: message, step)"),
    ("missing required field", {"event": "RunNote"}, "RunNote: missing field 'message'"),
    ("str for int", {"event": "RunNote", "message": "m", "step": "3"}, "RunNote.step must be an integer"),
    ("float for int", {"event": "RunNote", "message": "m", "step": 3.5}, "RunNote.step must be an integer"),
    ("bool for int", {"event": "RunNote", "message": "m", "step": False}, "RunNote.step must be an integer"),
    ("number for str", {"event": "RunNote", "message": 1}, "RunNote.message must be a string"),
    ("str for float", {**E.to_json(sample_events()[2]), "loss": "nan"}, "StepMetrics.loss must be a number"),
    ("list for dict", {**E.to_json(sample_events()[5]), "metrics": []}, "TestMetrics.metrics must be a JSON object"),
    ("number in live", {**E.to_json(sample_events()[0]), "live": ["lr", 3]}, "RunStarted.live[1] must be a string"),
    ("live not a list", {**E.to_json(sample_events()[0]), "live": "lr"}, "RunStarted.live must be an array"),
    ("ragged confusion", {"event": "TestMetrics", "metrics": {}, "confusion": [[1, 2], 3]}, "TestMetrics.confusion[1] must be an array"),
    ("float in confusion", {"event": "TestMetrics", "metrics": {}, "confusion": [[1, 2.5]]},
     "TestMetrics.confusion[0][1] must be an integer"),
    ("int for bool", {**E.to_json(sample_events()[3]), "is_best": 1}, "EpochMetrics.is_best must be true or false"),
    ("event not an object", "RunNote", "event must be a JSON object, not a string"),
]


@pytest.mark.parametrize(("body", "expected"), [(b, exp) for _, b, exp in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_malformed_events_are_refused_with_a_reason(body, expected):
    with pytest.raises(P.ProtocolError) as info:
        P.event_from_message(event_msg(body))
    assert expected in str(info.value)


@pytest.mark.parametrize("seq", [-1, True, 1.5, None, "1", 2**53])
def test_event_seq_is_checked(seq):
    with pytest.raises(P.ProtocolError, match="seq must be an integer"):
        P.event_from_message(event_msg(E.to_json(sample_events()[1]), seq=seq))


def test_readers_refuse_other_message_types():
    with pytest.raises(P.ProtocolError, match="expected a welcome message"):
        P.welcome_from_message(P.bye())
    with pytest.raises(P.ProtocolError, match="expected a event message"):
        P.event_from_message(P.welcome("a", "b", "c", 0))
    with pytest.raises(P.ProtocolError, match="welcome: seq must be an integer"):
        P.welcome_from_message({**P.welcome("a", "b", "c", 0), "seq": -1})
    with pytest.raises(P.ProtocolError, match="expected a command message, got an array"):
        P.command_from_message([])


def test_decode_refuses_a_str():
    with pytest.raises(P.ProtocolError, match="a line is bytes"):
        decode_client('{"v":1,"type":"bye"}')


# -- data only -----------------------------------------------------------------------------------
class NotData:
    pass


@pytest.mark.parametrize("message", [
    {"v": 1, "type": "event", "x": NotData()},
    {"v": 1, "type": "event", "x": {1, 2}},
    {"v": 1, "type": "event", "x": b"bytes"},
    {"v": 1, "type": "event", "x": {("tuple", "key"): 1}},
], ids=["object", "set", "bytes", "tuple key"])
def test_encode_refuses_what_is_not_a_json_value_with_a_type_error(message):
    with pytest.raises(TypeError):
        P.encode(message)


def test_encode_refuses_a_non_dict_and_lines_it_will_not_send():
    with pytest.raises(TypeError):
        P.encode([1, 2])  # type: ignore[arg-type]
    circular: dict = {"v": 1, "type": "event"}
    circular["self"] = circular
    with pytest.raises(P.ProtocolError, match="cannot be sent"):
        P.encode(circular)
    deep: list = []
    for _ in range(100000):
        deep = [deep]
    with pytest.raises(P.ProtocolError, match="nested too deep"):
        P.encode({"v": 1, "type": "event", "x": deep})
    with pytest.raises(P.ProtocolError, match="over the limit of 100 bytes") as info:
        P.encode({"v": 1, "type": "event", "x": "y" * 100}, limit=100)
    assert info.value.fatal


def test_the_module_never_imports_pickle_or_a_ui():
    tree = ast.parse(pathlib.Path(P.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"pickle", "cPickle", "dill", "marshal", "shelve", "textual", "plotext", "typer", "tui", "torch"}


# -- fuzz ----------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.integers(min_value=2**53 - 2, max_value=2**64) | st.sampled_from([10**400, -(10**400)]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
requests = st.integers(min_value=0, max_value=2**53 - 1) | json_values
command_names = st.sampled_from([c.__name__ for c in C.COMMAND_TYPES]) | json_values
arg_dicts = st.fixed_dictionaries({}, optional={
    "lr": json_values, "factor": json_values, "reason": json_values, "key": json_values,
    "value": json_values, "lr_factor": json_values, "extra": json_values}) | json_values
field_values = st.floats() | st.integers() | st.text(max_size=210) | json_values
own_commands = st.sampled_from(C.COMMAND_TYPES).flatmap(lambda cls: st.tuples(st.just(cls.__name__), st.fixed_dictionaries(
    {}, optional={f.name: field_values for f in dataclasses.fields(cls)})))
"""A command with some of its own arguments, of any type: the checks past the names."""


def refuses_only_with_protocol_error(line: bytes) -> None:
    try:
        msg = decode_client(line)
        if msg["type"] == "command":
            command, request = P.command_from_message(msg)
            assert isinstance(command, C.COMMAND_TYPES) and type(request) is int
        elif msg["type"] == "hello":
            P.viewer_from_hello(msg)
    except P.ProtocolError as err:
        assert str(err) and "\n" not in str(err)


@FUZZ
@given(request=requests, command=own_commands)
def test_fuzz_arguments_of_known_commands(request, command):
    name, args = command
    try:
        line = json.dumps({"v": 1, "type": "command", "request": request, "command": name, "args": args}).encode()
    except ValueError:
        return
    refuses_only_with_protocol_error(line)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data):
    refuses_only_with_protocol_error(data)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_bytes_after_a_valid_prefix(data):
    refuses_only_with_protocol_error(b'{"v":1,"type":"command","request":1,"command":"Stop","args":{"reason":' + data)


@FUZZ
@given(request=requests, name=command_names, args=arg_dicts, kind=st.sampled_from(["command", "hello", "bye"]) | json_values,
       version=st.sampled_from([1]) | json_values)
def test_fuzz_json_messages(request, name, args, kind, version):
    msg = {"v": version, "type": kind, "request": request, "command": name, "args": args}
    try:
        line = json.dumps(msg, allow_nan=True).encode("utf-8", "surrogatepass")
    except ValueError:  # an int json will not write: nothing to send
        return
    refuses_only_with_protocol_error(line)
    refuses_only_with_protocol_error(line.replace(b'"args"', b'"viewer"'))


event_names = st.sampled_from([t.__name__ for t in E.EVENT_TYPES]) | json_values
event_bodies = st.builds(
    lambda name, sample, tweaks: {**(E.to_json(sample) if isinstance(name, str) else {}), **tweaks, "event": name},
    event_names, st.sampled_from(sample_events()), st.dictionaries(st.sampled_from(
        ["step", "loss", "live", "confusion", "metrics", "summary", "message", "status", "old", "patience_left", "is_best", "x"]),
        json_values, max_size=3))


@FUZZ
@given(body=event_bodies | json_values, seq=json_values | st.integers(min_value=0, max_value=10))
def test_fuzz_events_on_the_viewer_side(body, seq):
    msg = {"v": 1, "type": "event", "seq": seq, "event": body}
    try:
        line = json.dumps(msg, allow_nan=True).encode("utf-8", "surrogatepass")
    except ValueError:
        return
    try:
        event, got = P.event_from_message(P.decode(line, limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES))
        assert isinstance(event, E.EVENT_TYPES) and got == seq
    except P.ProtocolError as err:
        assert str(err) and "\n" not in str(err)
