"""The wire format of the control endpoint: data only, one JSON object a line, hostile until checked.

A trainer hosts a control endpoint (an owner-only Unix socket); viewers (the TUI, ``tui-train
ctl``, scripts) connect to it, send commands and receive the run's events. This module is the
format both sides speak and nothing else: no sockets, no threads, no pickle.

Format
    Newline-delimited JSON: one object per line, UTF-8, ended by ``\\n`` (a ``\\r\\n`` is accepted).
    Every object has ``"v": PROTOCOL_VERSION`` and a ``"type"``. :func:`encode` writes compact,
    ASCII-only JSON (non-ASCII and lone surrogates, e.g. from undecodable file names, are
    ``\\u`` escapes, so any Python str crosses unchanged); non-finite floats are the tokens
    ``NaN``/``Infinity``/``-Infinity``, as in ``metrics.jsonl``.

    viewer -> trainer (:data:`CLIENT_TYPES`)
        ``{"v":1,"type":"hello","viewer":"tui"}``: first, once; ``viewer`` is a short kind
        (``tui``, ``ctl``, ``script``: lowercase letters, digits, ``-`` or ``_``, at most 32).
        ``{"v":1,"type":"command","request":7,"command":"SetLearningRate","args":{"lr":0.0005}}``:
        ``command`` is a name in :data:`core.commands.COMMAND_TYPES`, ``args`` its fields (may be
        left out when it has none), ``request`` an int in ``[0, 2**53)`` the viewer chooses.
        ``{"v":1,"type":"bye"}``: the viewer leaves; the trainer closes the connection.
    trainer -> viewer (:data:`SERVER_TYPES`)
        ``{"v":1,"type":"welcome","viewer_id":"tui-2","run_dir":...,"status":"running","seq":41}``:
        the answer to hello. ``viewer_id`` names this connection in the ``origin`` of the
        acknowledgements it causes (and in events.jsonl); ``seq`` is the number of the last event
        sent before this viewer subscribed (events are numbered from 1, so 0 means none yet): the
        viewer reads the run directory up to there and the stream adds what follows.
        ``{"v":1,"type":"event","seq":42,"event":{"event":"StepMetrics",...}}``: every event,
        ``event`` as :func:`core.events.to_json` writes it; ``seq`` grows by one per event.
        ``{"v":1,"type":"error","reason":"...","request":7}``: a message was refused; ``reason``
        is one line, ``request`` the refused command's request (null when unknown or not a command).
        ``{"v":1,"type":"viewers","count":3}``: how many dashboards (viewers of kind ``tui``) are
        attached now, sent to every viewer when one comes or goes. Dashboards pace their redraws
        by it, so that several of them together cost about what one does.

Limits
    :data:`MAX_CLIENT_LINE` (16 KiB) for a line from a viewer and :data:`MAX_SERVER_LINE` (4 MiB)
    for a line from the trainer, the newline excluded. A reader never buffers more than the limit
    plus 2 bytes (the line and its ``\\r\\n``) waiting for a newline: a longer line is over the limit.
    A str argument of a command is at most :data:`MAX_ARG_CHARS` characters, without control
    characters. A ``ConfusionMatrix`` event is checked as a whole: a square matrix of counts of
    at most ``MAX_CONFUSION_CLASSES`` classes, as many short printable class names (or none), at
    most ``MAX_MISTAKES`` samples whose class indices lie below ``num_classes``, each an image of
    at most ``MAX_IMAGE_SIDE`` a side with 1 or 3 channels whose base64 pixels decode to exactly
    its size, or at most ``MAX_FEATURES`` numbers (the limits are :mod:`core.events`').

What a bad message gets (the endpoint's contract; :attr:`ProtocolError.fatal` tells which case)
    - A line over the limit, or a wrong or missing version: an ``error`` reply, then the connection
      is closed (the stream cannot be trusted to resynchronise, or the peer speaks another version).
    - Anything else malformed (not UTF-8, not JSON, not an object, an unknown type, a hello sent
      twice, a command before hello, an unknown command, unknown or missing or mistyped arguments):
      an ``error`` reply naming what is wrong, with the request when it could be read; the
      connection stays open and nothing is submitted to the trainer.
    - A well-formed command is submitted; its answer is the engine's ``CommandApplied`` or
      ``CommandRejected`` event (to every viewer, ``origin`` = the sender's ``viewer_id``). The
      protocol checks types only: range and finiteness are the engine's (:mod:`core.limits`), so a
      NaN learning rate is well-formed and then rejected by the engine with its reason.
    The trainer trains on regardless: nothing here raises anything but :class:`ProtocolError` for
    what arrives (``tests/unit/test_protocol.py`` fuzzes it).

Sending a non-JSON value is a bug of the sender, not a hostile peer: :func:`encode` raises
``TypeError`` for it (json's own message, naming the type), and :class:`ProtocolError` only for a
line it will not send (over its limit, nested too deep, circular).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, NamedTuple

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.breakpoints import MAX_BREAKPOINTS

PROTOCOL_VERSION = 1
"""The version this module speaks; a peer with another one is refused (and disconnected)."""
MAX_CLIENT_LINE = 16 * 1024
"""Bytes of one line from a viewer, the newline excluded."""
MAX_SERVER_LINE = 4 * 1024 * 1024
"""Bytes of one line from the trainer, the newline excluded (a RunFinished summary can be large)."""
CLIENT_TYPES = ("hello", "command", "bye")
"""Message types a viewer sends."""
MAX_VIEWERS_REPORTED = 1024
"""The largest viewer count a viewers message may carry (the endpoint allows far fewer)."""
SERVER_TYPES = ("welcome", "event", "error", "viewers")
"""Message types the trainer sends."""
MAX_ARG_CHARS = 200
"""Characters of one str argument of a command (a Stop reason, a hyperparameter key)."""
MAX_REQUEST = 2**53
"""Request ids and sequence numbers lie in ``[0, MAX_REQUEST)``: exact in every JSON reader."""
MAX_REASON_CHARS = 1000
"""Characters of an error reply's reason (longer ones are cut)."""

_VIEWER_KIND = re.compile(r"[a-z0-9_-]{1,32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class ProtocolError(ValueError):
    """A message that is not valid: ``str(err)`` is one line saying what is wrong (the error reply).

    ``fatal`` is True when the connection must be closed after the reply (a line over the limit, a
    wrong or missing version); ``request`` is the refused command's request id when it could be read.
    """

    def __init__(self, reason: str, *, fatal: bool = False, request: int | None = None) -> None:
        super().__init__(" ".join(str(reason).split()))
        self.fatal = fatal
        """Close the connection after the error reply."""
        self.request = request
        """The request id of the refused command, or None."""


# -- the line ------------------------------------------------------------------------------------
def encode(message: dict, *, limit: int = MAX_SERVER_LINE) -> bytes:
    """One line of compact JSON for ``message``, newline included.

    TypeError when ``message`` is not a dict or holds something that is not a JSON value (a bug of
    the sender); ProtocolError when the line would exceed ``limit`` bytes (newline excluded), or is
    nested too deep or circular.
    """
    if not isinstance(message, dict):
        raise TypeError(f"a message is a dict, not {type(message).__name__}")
    try:
        # ensure_ascii: lone surrogates (os.fsdecode of undecodable bytes) cannot be UTF-8 encoded;
        # as \u escapes they cross and decode to the same str
        text = json.dumps(message, separators=(",", ":"), allow_nan=True, ensure_ascii=True)
    except RecursionError:
        raise ProtocolError("message nested too deep to send") from None
    except ValueError as err:  # circular reference
        raise ProtocolError(f"message cannot be sent: {err}") from None
    data = text.encode("ascii")
    if len(data) > limit:
        raise ProtocolError(f"message of {len(data)} bytes is over the limit of {limit} bytes", fatal=True)
    return data + b"\n"


def decode(line: bytes, *, limit: int, allowed_types: tuple[str, ...]) -> dict:
    """The message in one received line, checked: size, UTF-8, JSON, an object, the version, the type.

    ``line`` may end with ``\\n`` or ``\\r\\n``; ``limit`` is in bytes, the newline excluded. Raises
    only ProtocolError, whatever the bytes (``fatal`` for a line over the limit or a wrong version).
    """
    if not isinstance(line, bytes | bytearray | memoryview):
        raise ProtocolError(f"a line is bytes, not {type(line).__name__}")
    line = bytes(line)
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    if len(line) > limit:
        raise ProtocolError(f"line of {len(line)} bytes is over the limit of {limit} bytes", fatal=True)
    if b"\n" in line:
        raise ProtocolError("one message per line: the line holds a newline")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtocolError(f"not UTF-8: invalid byte at offset {err.start}") from None
    if not text.strip():
        raise ProtocolError("empty line: expected a JSON object")
    try:
        message = json.loads(text)  # NaN, Infinity and 1e999 (inf) are accepted, as in metrics.jsonl
    except RecursionError:
        raise ProtocolError("not valid JSON: nested too deep") from None
    except ValueError as err:  # JSONDecodeError, an int of more than 4300 digits
        raise ProtocolError(f"not valid JSON: {_first_line(err)}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message is a JSON object, not {_kind(message)}")
    if "v" not in message:
        raise ProtocolError(f"missing protocol version \"v\" (this endpoint speaks {PROTOCOL_VERSION})", fatal=True)
    version = message["v"]
    if type(version) is not int or version != PROTOCOL_VERSION:  # type(): true == 1 in Python
        raise ProtocolError(f"protocol version {_show(version)} is not supported (this endpoint speaks {PROTOCOL_VERSION})",
                            fatal=True)
    if "type" not in message:
        raise ProtocolError(f"missing message type \"type\" (allowed: {', '.join(allowed_types)})")
    kind = message["type"]
    if not isinstance(kind, str) or kind not in allowed_types:
        raise ProtocolError(f"unknown message type {_show(kind)} (allowed: {', '.join(allowed_types)})")
    return message


# -- builders ------------------------------------------------------------------------------------
def hello(viewer: str) -> dict:
    """A viewer's first message; ``viewer`` is its kind: 'tui', 'ctl', 'script'..."""
    return {"v": PROTOCOL_VERSION, "type": "hello", "viewer": viewer}


def command_message(command: C.Command, request: int) -> dict:
    """A command to submit, with the request id its error reply (if any) will carry."""
    args = {f.name: getattr(command, f.name) for f in dataclasses.fields(command)}
    return {"v": PROTOCOL_VERSION, "type": "command", "request": request, "command": command.name, "args": args}


def bye() -> dict:
    """A viewer leaving."""
    return {"v": PROTOCOL_VERSION, "type": "bye"}


def welcome(viewer_id: str, run_dir: str, status: str, seq: int) -> dict:
    """The trainer's answer to hello: the viewer's id, the run, its status, the last event's seq before it."""
    return {"v": PROTOCOL_VERSION, "type": "welcome", "viewer_id": viewer_id, "run_dir": run_dir, "status": status, "seq": seq}


def viewers(count: int) -> dict:
    """How many dashboards are attached now (trainer -> every viewer, when one comes or goes)."""
    return {"v": PROTOCOL_VERSION, "type": "viewers", "count": count}


def event_message(event: E.Event, seq: int) -> dict:
    """One event of the run, numbered ``seq`` (from 1, one more per event)."""
    return {"v": PROTOCOL_VERSION, "type": "event", "seq": seq, "event": E.to_json(event)}


def error(reason: str, request: int | None = None) -> dict:
    """A refusal: ``reason`` in one line (cut at :data:`MAX_REASON_CHARS`), the refused request or None."""
    text = " ".join(str(reason).split())
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return {"v": PROTOCOL_VERSION, "type": "error", "reason": text, "request": request}


# -- readers: a decoded message -> typed values, ProtocolError otherwise -------------------------
class Welcome(NamedTuple):
    """A checked welcome message."""

    viewer_id: str
    """This connection's id, the ``origin`` of the acknowledgements it causes."""
    run_dir: str
    """The run directory."""
    status: str
    """The run's status when the viewer subscribed."""
    seq: int
    """The last event's seq before the viewer subscribed (0: none)."""


def viewer_from_hello(msg: dict) -> str:
    """The viewer kind of a decoded hello message."""
    _expect(msg, "hello", ("viewer",))
    viewer = msg.get("viewer")
    if not isinstance(viewer, str) or not _VIEWER_KIND.fullmatch(viewer):
        raise ProtocolError(f"hello: viewer must be a short kind such as \"tui\" or \"ctl\" "
                            f"(lowercase letters, digits, - or _, at most 32), got {_show(viewer)}")
    return viewer


def command_from_message(msg: dict) -> tuple[C.Command, int]:
    """The command and request id of a decoded command message, every argument type-checked.

    Types only: a NaN or negative learning rate is well-formed (the engine rejects it, with a
    reason). int arguments for float fields are converted to float.
    """
    _expect(msg, "command", ("request", "command", "args"))
    request = _counter(msg.get("request"), "request")
    try:
        name = msg.get("command")
        spec = _COMMANDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ProtocolError(f"unknown command {_show(name)} (allowed: {', '.join(_COMMANDS)})")
        cls, fields = spec
        args = msg.get("args", {})
        if not isinstance(args, dict):
            raise ProtocolError(f"{name}: args must be a JSON object, not {_kind(args)}")
        _check_keys(name, "argument", args, fields)
        values = {}
        for key, value in args.items():
            check = fields[key][0]
            values[key] = check(value, f"{name}: argument {key!r}")
        return cls(**values), request
    except ProtocolError as err:
        raise ProtocolError(str(err), request=request) from None


def welcome_from_message(msg: dict) -> Welcome:
    """The checked content of a decoded welcome message."""
    _expect(msg, "welcome", ("viewer_id", "run_dir", "status", "seq"))
    values = {}
    for key in ("viewer_id", "run_dir", "status"):
        values[key] = _check_str(msg.get(key), f"welcome: {key}")
    return Welcome(seq=_counter(msg.get("seq"), "welcome: seq"), **values)


def event_from_message(msg: dict) -> tuple[E.Event, int]:
    """The event and its seq of a decoded event message (the viewer side).

    Fields left out that have a default take it (an older trainer); unknown fields are refused;
    tuple fields come back as tuples (``RunStarted.live``, ``TestMetrics.confusion``).
    """
    _expect(msg, "event", ("seq", "event"))
    seq = _counter(msg.get("seq"), "seq")
    data = msg.get("event")
    if not isinstance(data, dict):
        raise ProtocolError(f"event must be a JSON object, not {_kind(data)}")
    name = data.get("event")
    spec = _EVENTS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ProtocolError(f"unknown event {_show(name)} (allowed: {', '.join(_EVENTS)})")
    cls, fields = spec
    body = {k: v for k, v in data.items() if k != "event"}
    _check_keys(name, "field", body, fields)
    values = {key: fields[key][0](value, f"{name}.{key}") for key, value in body.items()}
    if cls is E.ConfusionMatrix:
        _check_confusion_event(values, name)
    return cls(**values), seq


def viewers_from_message(msg: dict) -> int:
    """The checked count of a decoded viewers message (0 when only scripts are attached)."""
    _expect(msg, "viewers", ("count",))
    count = msg.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_VIEWERS_REPORTED:
        raise ProtocolError(f"viewers: count must be an integer from 0 to {MAX_VIEWERS_REPORTED}, got {_show(count)}")
    return count


def error_from_message(msg: dict) -> tuple[str, int | None]:
    """The reason and request id (None when not about a command) of a decoded error message."""
    _expect(msg, "error", ("reason", "request"))
    reason = msg.get("reason")
    if not isinstance(reason, str):
        raise ProtocolError(f"error: reason must be a string, not {_kind(reason)}")
    request = msg.get("request")
    return reason, (None if request is None else _counter(request, "error: request"))


# -- checks --------------------------------------------------------------------------------------
Check = Callable[[Any, str], Any]
"""``check(value, where) -> value`` as the dataclass holds it, or ProtocolError naming ``where``."""


def _expect(msg: Any, kind: str, keys: tuple[str, ...]) -> None:
    """``msg`` is a decoded message of type ``kind`` with no keys but v, type and ``keys``."""
    if not isinstance(msg, dict) or msg.get("type") != kind:
        got = msg.get("type") if isinstance(msg, dict) else None
        raise ProtocolError(f"expected a {kind} message, got {_show(got) if got is not None else _kind(msg)}")
    extra = [k for k in msg if k not in ("v", "type", *keys)]
    if extra:
        raise ProtocolError(f"{kind}: unknown key {_show(extra[0])} (allowed: {', '.join(('v', 'type', *keys))})")


def _check_keys(owner: str, what: str, given: dict, fields: dict[str, tuple[Check, bool]]) -> None:
    unknown = [k for k in given if k not in fields]
    if unknown:
        allowed = ", ".join(fields) or "none"
        raise ProtocolError(f"{owner}: unknown {what} {_show(unknown[0])} (allowed: {allowed})")
    missing = [k for k, (_, has_default) in fields.items() if not has_default and k not in given]
    if missing:
        raise ProtocolError(f"{owner}: missing {what} {', '.join(repr(k) for k in missing)}")


def _counter(value: Any, where: str) -> int:
    """A request id or sequence number: an int (not a bool) in [0, MAX_REQUEST)."""
    if type(value) is not int or not 0 <= value < MAX_REQUEST:
        raise ProtocolError(f"{where} must be an integer in [0, 2**53), got {_show(value)}")
    return value


def _check_float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{where} must be a number, got {_show(value)}")
    try:
        return float(value)  # NaN and inf stay: the engine's limits refuse them with a reason
    except OverflowError:
        raise ProtocolError(f"{where} is out of range: an integer of {value.bit_length()} bits") from None


def _check_number(value: Any, where: str) -> float | int:
    """An event's float field: a number as sent (an int stays an int: CommandApplied.new of patience)."""
    _check_float(value, where)
    return value


def _check_int(value: Any, where: str) -> int:
    if type(value) is not int:
        raise ProtocolError(f"{where} must be an integer, got {_show(value)}")
    return value


def _check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{where} must be true or false, got {_show(value)}")
    return value


def _check_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{where} must be a string, got {_show(value)}")
    return value


def _check_arg_str(value: Any, where: str) -> str:
    """A command's str argument: short, printable, encodable (it reaches logs, names and screens)."""
    _check_str(value, where)
    if len(value) > MAX_ARG_CHARS:
        raise ProtocolError(f"{where} is {len(value)} characters, over the limit of {MAX_ARG_CHARS}")
    if _CONTROL.search(value) or _SURROGATE.search(value):
        raise ProtocolError(f"{where} holds a control character or a lone surrogate")
    return value


def _check_dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be a JSON object, not {_kind(value)}")
    return value


def _optional(check: Check) -> Check:
    def optional(value: Any, where: str) -> Any:
        return None if value is None else check(value, where)
    return optional


def _as_tuple(value: Any, where: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise ProtocolError(f"{where} must be an array, not {_kind(value)}")
    return tuple(value)


def _str_items(value: Any, where: str) -> tuple[str, ...]:
    items = _as_tuple(value, where)
    for i, item in enumerate(items):
        _check_str(item, f"{where}[{i}]")
    return items


def _int_rows(value: Any, where: str) -> tuple[tuple[int, ...], ...]:
    rows = tuple(_as_tuple(row, f"{where}[{i}]") for i, row in enumerate(_as_tuple(value, where)))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            _check_int(cell, f"{where}[{i}][{j}]")
    return rows


def _scalar_items(value: Any, where: str) -> tuple:
    """A tuple field without a shape of its own: an array of JSON scalars."""
    items = _as_tuple(value, where)
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, str | int | float):
            raise ProtocolError(f"{where}[{i}] must be a number, a string, a boolean or null, not {_kind(item)}")
    return items


def _class_names(value: Any, where: str) -> tuple[str, ...]:
    """ConfusionMatrix.classes: at most MAX_CONFUSION_CLASSES short printable names."""
    items = _as_tuple(value, where)
    if len(items) > E.MAX_CONFUSION_CLASSES:
        raise ProtocolError(f"{where} has {len(items)} names, over the limit of {E.MAX_CONFUSION_CLASSES}")
    for i, item in enumerate(items):
        _check_arg_str(item, f"{where}[{i}]")
    return items


def _square_counts(value: Any, where: str) -> tuple[tuple[int, ...], ...]:
    """ConfusionMatrix.confusion: a square matrix of counts >= 0, at most MAX_CONFUSION_CLASSES wide."""
    rows = _as_tuple(value, where)
    if len(rows) > E.MAX_CONFUSION_CLASSES:
        raise ProtocolError(f"{where} has {len(rows)} rows, over the limit of {E.MAX_CONFUSION_CLASSES}")
    rows = _int_rows(rows, where)
    for i, row in enumerate(rows):
        if len(row) != len(rows):
            raise ProtocolError(f"{where}[{i}] has {len(row)} counts, the matrix {len(rows)} rows (it must be square)")
        if any(cell < 0 for cell in row):
            raise ProtocolError(f"{where}[{i}] holds a negative count")
    return rows


_IMAGE_KEYS = ("height", "width", "channels", "pixels")
_MISTAKE_KEYS = ("index", "true", "pred", *_IMAGE_KEYS, "features")


def _mistakes(value: Any, where: str) -> tuple[dict, ...]:
    """ConfusionMatrix.mistakes: at most MAX_MISTAKES samples, each an image of at most
    MAX_IMAGE_SIDE x MAX_IMAGE_SIDE x (1 or 3) uint8 in base64 whose size matches its shape, or at
    most MAX_FEATURES feature values (see core.events.ConfusionMatrix)."""
    items = _as_tuple(value, where)
    if len(items) > E.MAX_MISTAKES:
        raise ProtocolError(f"{where} has {len(items)} samples, over the limit of {E.MAX_MISTAKES}")
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        _check_dict(item, at)
        unknown = [k for k in item if k not in _MISTAKE_KEYS]
        if unknown:
            raise ProtocolError(f"{at}: unknown key {_show(unknown[0])} (allowed: {', '.join(_MISTAKE_KEYS)})")
        for key in ("index", "true", "pred"):
            if key not in item:
                raise ProtocolError(f"{at}: missing key {key!r}")
            if type(item[key]) is not int or not 0 <= item[key] < MAX_REQUEST:
                raise ProtocolError(f"{at}.{key} must be an integer in [0, 2**53), got {_show(item[key])}")
        image = [k for k in _IMAGE_KEYS if k in item]
        if bool(image) == ("features" in item):
            raise ProtocolError(f"{at}: a sample holds an image ({', '.join(_IMAGE_KEYS)}) or features, one of them")
        if image:
            _check_image(item, at)
        else:
            features = _as_tuple(item["features"], f"{at}.features")
            if len(features) > E.MAX_FEATURES:
                raise ProtocolError(f"{at}.features has {len(features)} values, over the limit of {E.MAX_FEATURES}")
            for j, f in enumerate(features):
                _check_float(f, f"{at}.features[{j}]")
    return items


def _check_image(item: dict, at: str) -> None:
    missing = [k for k in _IMAGE_KEYS if k not in item]
    if missing:
        raise ProtocolError(f"{at}: an image needs {', '.join(_IMAGE_KEYS)} (missing {missing[0]!r})")
    for key in ("height", "width"):
        if type(item[key]) is not int or not 1 <= item[key] <= E.MAX_IMAGE_SIDE:
            raise ProtocolError(f"{at}.{key} must be an integer in [1, {E.MAX_IMAGE_SIDE}], got {_show(item[key])}")
    if type(item["channels"]) is not int or item["channels"] not in (1, 3):
        raise ProtocolError(f"{at}.channels must be 1 or 3, got {_show(item['channels'])}")
    pixels, size = item["pixels"], item["height"] * item["width"] * item["channels"]
    if not isinstance(pixels, str) or len(pixels) != 4 * -(-size // 3):
        raise ProtocolError(f"{at}.pixels must be base64 of {size} bytes ({4 * -(-size // 3)} characters)")
    try:
        raw = base64.b64decode(pixels, validate=True)
    except (ValueError, binascii.Error):
        raise ProtocolError(f"{at}.pixels is not valid base64") from None
    if len(raw) != size:
        raise ProtocolError(f"{at}.pixels holds {len(raw)} bytes, the shape {size}")


def _check_confusion_event(values: dict, name: str) -> None:
    """ConfusionMatrix as a whole: the matrix, the names and the mistakes agree on the class count."""
    n = values.get("num_classes", 0)
    if n < 0:
        raise ProtocolError(f"{name}.num_classes must be >= 0, got {n}")
    confusion, classes = values.get("confusion", ()), values.get("classes", ())
    if confusion and len(confusion) != n:
        raise ProtocolError(f"{name}.confusion has {len(confusion)} rows for {n} classes")
    if classes and len(classes) != n:
        raise ProtocolError(f"{name}.classes has {len(classes)} names for {n} classes")
    for i, item in enumerate(values.get("mistakes", ())):
        if item["true"] >= n or item["pred"] >= n:
            raise ProtocolError(f"{name}.mistakes[{i}]: a class index is not below num_classes ({n})")


def _breakpoint_items(value: Any, where: str) -> tuple[dict, ...]:
    """RunStarted.breakpoints, BreakpointsChanged.pending: at most MAX_BREAKPOINTS {id, spec}, an
    id in [1, 2**53) and a short printable spec each (core.breakpoints)."""
    items = _as_tuple(value, where)
    if len(items) > MAX_BREAKPOINTS:
        raise ProtocolError(f"{where} has {len(items)} breakpoints, over the limit of {MAX_BREAKPOINTS}")
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        _check_dict(item, at)
        if sorted(item) != ["id", "spec"]:
            raise ProtocolError(f"{at}: a breakpoint is {{id, spec}}, got keys {', '.join(map(str, item)) or 'none'}")
        if type(item["id"]) is not int or not 1 <= item["id"] < MAX_REQUEST:
            raise ProtocolError(f"{at}.id must be an integer in [1, 2**53), got {_show(item['id'])}")
        _check_arg_str(item["spec"], f"{at}.spec")
    return items


_TUPLE_FIELDS: dict[tuple[type, str], Check] = {
    (E.RunStarted, "live"): _str_items,
    (E.RunStarted, "breakpoints"): _breakpoint_items,
    (E.BreakpointsChanged, "pending"): _breakpoint_items,
    (E.TestMetrics, "confusion"): _int_rows,
    (E.ConfusionMatrix, "classes"): _class_names,
    (E.ConfusionMatrix, "confusion"): _square_counts,
    (E.ConfusionMatrix, "mistakes"): _mistakes,
}
"""The element checks of tuple-typed event fields (any other tuple field: an array of scalars)."""

MAX_SCALARS = 64
"""The most names one Scalars event carries (a loop of your own logging many more sends several)."""


def _number_map(value: Any, where: str) -> dict:
    """Scalars.values: at most MAX_SCALARS names (strings of at most MAX_ARG_CHARS) -> numbers."""
    _check_dict(value, where)
    if len(value) > MAX_SCALARS:
        raise ProtocolError(f"{where}: {len(value)} names (at most {MAX_SCALARS})")
    for k, v in value.items():
        if len(k) > MAX_ARG_CHARS:
            raise ProtocolError(f"{where}: a name of {len(k)} characters (at most {MAX_ARG_CHARS})")
        _check_float(v, f"{where}[{_show(k)}]")
    return value


_DICT_FIELDS: dict[tuple[type, str], Check] = {(E.Scalars, "values"): _number_map}
"""The checks of dict-typed event fields that hold more than any JSON object."""

_SCALARS: dict[Any, Check] = {float: _check_float, int: _check_int, bool: _check_bool, str: _check_str, dict: _check_dict}


def _field_check(owner: type, name: str, hint: Any, replace: dict[Check, Check]) -> Check:
    """The check of one dataclass field, from its annotation; TypeError for one the protocol cannot carry."""
    if hint is tuple or typing.get_origin(hint) is tuple:
        return _TUPLE_FIELDS.get((owner, name), _scalar_items)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) == 1 and len(typing.get_args(hint)) == 2:
            return _optional(_field_check(owner, name, members[0], replace))
    if hint is dict and (owner, name) in _DICT_FIELDS:
        return _DICT_FIELDS[(owner, name)]
    if hint in _SCALARS:
        return replace.get(_SCALARS[hint], _SCALARS[hint])
    raise TypeError(f"core.protocol cannot carry {owner.__name__}.{name}: {hint!r}")


def _table(classes: tuple[type, ...], replace: dict[Check, Check]) -> dict[str, tuple[type, dict[str, tuple[Check, bool]]]]:
    """Name -> (class, field -> (check, has a default)), built once at import (``replace`` swaps
    scalar checks): a new command or event type with a field the protocol cannot carry fails the
    import, not a run."""
    table = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        fields = {}
        for f in dataclasses.fields(cls):
            check = _field_check(cls, f.name, hints[f.name], replace)
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            fields[f.name] = (check, has_default)
        table[cls.__name__] = (cls, fields)
    return table


_COMMANDS = _table(C.COMMAND_TYPES, {_check_str: _check_arg_str})
"""Command name -> its class and argument checks."""
_EVENTS = _table(E.EVENT_TYPES, {_check_float: _check_number})
"""Event name -> its class and field checks."""


# -- showing hostile values in one short line ----------------------------------------------------
def _kind(value: Any) -> str:
    """What a JSON value is, in words."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def _show(value: Any, width: int = 40) -> str:
    """A received value in a message: scalars as JSON (escaped, cut to ``width``), containers by kind."""
    if isinstance(value, dict | list | tuple):
        return _kind(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()
    return text[0] if text else type(err).__name__
