#!/usr/bin/python3
"""A Python `websockets` peer for the interop tests (Debian's
python3-websockets, run with /usr/bin/python3).

    peer.py call URL [CA]     connect, run the caller's side of the exchange
                              (for wss:, trusting the certificate in file CA)
    peer.py answer [CERT KEY] serve once on 127.0.0.1, run the answerer's side
                              (over TLS with CERT and KEY, if given)
    peer.py server-close URL  connect, say hello, wait for the server's Close
    peer.py abort URL         connect, say hello, then drop the TCP connection

The exchange (see payload.js, which this file mirrors line by line):

    caller:   set(1), extras (the split one with a ping between fragments)
    answerer: checks them; set(2), extras; ping; "end"
    caller:   checks them; ping; close(4000, "bye from python")

Every result goes to stdout as one line "RESULT <json>"; progress goes to
stderr. "LISTENING <port>" tells the test where the answerer listens.
"""

import asyncio
import hashlib
import json
import ssl
import sys
import time

import websockets
from websockets.frames import OP_CONT, OP_TEXT

SIZES = [0, 125, 64 * 1024, 16 * 1024 * 1024]
BLOCK = 65521
MAX_SIZE = 64 * 1024 * 1024
STEP_TIMEOUT = 20
EXTRA_SPLIT = "split \U0001F389 char"
EXTRA_SPLIT_AT = 8
TEXT_CUTS = [1, 1, 5000, 20000]
BINARY_CUTS = [1, 1, 65536]
END = "end"

_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def next_(x):
    return (x * 1103515245 + 12345) & 0xFFFFFFFF


def binary_payload(seed, size):
    block = bytearray(BLOCK)
    x = seed
    for i in range(BLOCK):
        x = next_(x)
        block[i] = x >> 24
    block = bytes(block)
    parts = []
    at = 0
    k = 0
    while at < size:
        parts.append(block.translate(_XOR[k & 0xFF]))
        at += BLOCK
        k += 1
    return b"".join(parts)[:size]


def text_base(seed):
    x = seed
    out = []
    for _ in range(256):
        x = next_(x)
        r = x >> 8
        v = r >> 2
        kind = r & 3
        if kind == 0:
            cp = 0x20 + v % 95
        elif kind == 1:
            cp = 0x80 + v % 0x780
        elif kind == 2:
            cp = 0x800 + v % 0xD000
        else:
            cp = 0x10000 + v % 0x100000
        out.append(chr(cp))
    return "".join(out)


def text_payload(seed, size):
    base = text_base(seed)
    base_length = len(base.encode())
    parts = []
    total = 0
    k = 0
    while True:
        marker = f"<{k}>"
        n = len(marker) + base_length
        if total + n > size:
            break
        parts.append(marker)
        parts.append(base)
        total += n
        k += 1
    for ch in f"<{k}>{base}":
        n = len(ch.encode())
        if total + n > size:
            break
        parts.append(ch)
        total += n
    parts.append("." * (size - total))
    return "".join(parts)


def message_set(seed):
    out = []
    for size in SIZES:
        out.append(("binary", size, binary_payload(seed, size)))
        out.append(("text", size, text_payload(seed, size)))
    return out


def extras():
    return [
        ("split", EXTRA_SPLIT),
        ("fragmented text", text_payload(3, 100000)),
        ("fragmented binary", binary_payload(4, 200000)),
    ]


def cut(data, cuts):
    bounds = [0] + cuts + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def sha256(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def describe(data):
    kind = "text" if isinstance(data, str) else "binary"
    size = len(data.encode()) if kind == "text" else len(data)
    return {"type": kind, "size": size, "sha256": sha256(data)}


async def step(awaitable, what):
    try:
        return await asyncio.wait_for(awaitable, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out: {what}") from None


async def send_extras(ws, result):
    # The split character, with a ping between its two fragments: the peer
    # must answer the ping in the middle of a message.
    data = EXTRA_SPLIT.encode()
    await ws.write_frame(False, OP_TEXT, data[:EXTRA_SPLIT_AT])
    pong = await ws.ping(b"mid-message")
    await step(pong, "the pong to a ping between fragments")
    result["mid_message_pong"] = True
    await ws.write_frame(True, OP_CONT, data[EXTRA_SPLIT_AT:])
    # A fragmented message per type, from an iterable (one frame each,
    # some of them empty).
    await ws.send(cut(text_payload(3, 100000), TEXT_CUTS))
    await ws.send(cut(binary_payload(4, 200000), BINARY_CUTS))


async def receive_checked(ws, expected, result, name):
    data = await step(ws.recv(), f"receiving {name}")
    got = describe(data)
    got["name"] = name
    got["ok"] = data == expected
    result["received"].append(got)
    if not got["ok"]:
        log(f"MISMATCH {name}: got {got}, expected {describe(expected)}")


def sent_record(name, data):
    record = describe(data)
    record["name"] = name
    return record


async def call(url, ca=None):
    result = {"role": "caller", "received": [], "sent": []}
    started = time.monotonic()
    context = None if ca is None else ssl.create_default_context(cafile=ca)
    async with websockets.connect(
        url, max_size=MAX_SIZE, open_timeout=STEP_TIMEOUT, ssl=context
    ) as ws:
        result["extensions"] = [e.name for e in ws.extensions]
        for kind, size, data in message_set(1):
            await step(ws.send(data), f"sending {kind} {size}")
            result["sent"].append(sent_record(f"{kind} {size}", data))
        await send_extras(ws, result)
        for name, data in extras():
            result["sent"].append(sent_record(name, data))
        log("caller: sent everything")
        for kind, size, data in message_set(2):
            await receive_checked(ws, data, result, f"{kind} {size}")
        for name, data in extras():
            await receive_checked(ws, data, result, name)
        await receive_checked(ws, END, result, "end")
        log("caller: received everything")
        pong = await ws.ping(b"python ping")
        await step(pong, "the pong to our ping")
        result["pong"] = True
        await step(ws.close(4000, "bye from python"), "closing")
        result["close"] = {"code": ws.close_code, "reason": ws.close_reason}
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


async def answer(cert=None, key=None):
    done = asyncio.get_running_loop().create_future()

    async def handler(ws, path=None):
        result = {"role": "answerer", "received": [], "sent": []}
        try:
            result["extensions"] = [e.name for e in ws.extensions]
            for kind, size, data in message_set(1):
                await receive_checked(ws, data, result, f"{kind} {size}")
            for name, data in extras():
                await receive_checked(ws, data, result, name)
            log("answerer: received everything")
            for kind, size, data in message_set(2):
                await step(ws.send(data), f"sending {kind} {size}")
                result["sent"].append(sent_record(f"{kind} {size}", data))
            await send_extras(ws, result)
            for name, data in extras():
                result["sent"].append(sent_record(name, data))
            pong = await ws.ping(b"python ping")
            await step(pong, "the pong to our ping")
            result["pong"] = True
            await ws.send(END)
            log("answerer: sent everything")
            await step(ws.wait_closed(), "the caller's close")
            result["close"] = {"code": ws.close_code, "reason": ws.close_reason}
        except Exception as error:  # reported, not raised: the test decides
            result["error"] = f"{type(error).__name__}: {error}"
        if not done.done():
            done.set_result(result)

    context = None
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    async with websockets.serve(
        handler, "127.0.0.1", 0, max_size=MAX_SIZE, ssl=context
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        return await asyncio.wait_for(done, 60)


async def server_close(url):
    result = {"role": "server-close"}
    async with websockets.connect(url, max_size=MAX_SIZE) as ws:
        await ws.send("hello")
        result["echo"] = await step(ws.recv(), "the echo")
        try:
            extra = await step(ws.recv(), "the server's Close")
            result["unexpected"] = describe(extra)
        except websockets.ConnectionClosed as closed:
            result["exception"] = type(closed).__name__
        await step(ws.wait_closed(), "the end of the connection")
        result["close"] = {"code": ws.close_code, "reason": ws.close_reason}
    return result


async def abort(url):
    result = {"role": "abort"}
    ws = await websockets.connect(url, max_size=MAX_SIZE)
    await ws.send("hello")
    result["echo"] = await step(ws.recv(), "the echo")
    # Drop the TCP connection: no Close frame.
    ws.transport.abort()
    result["aborted"] = True
    return result


def main():
    mode = sys.argv[1]
    if mode == "call":
        run = call(*sys.argv[2:4])
    elif mode == "answer":
        run = answer(*sys.argv[2:4])
    elif mode == "server-close":
        run = server_close(sys.argv[2])
    elif mode == "abort":
        run = abort(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode}")
    try:
        result = asyncio.run(run)
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    result["websockets"] = websockets.__version__
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
