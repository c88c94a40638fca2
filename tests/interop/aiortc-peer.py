"""An aiortc peer for tests/interop.rs: one data channel, copy-paste tokens through files.

    python3 aiortc-peer.py offer|answer send|recv FILE OFFER_TOKEN ANSWER_TOKEN

offer: opens the channel, writes the offer token, waits for the answer token.
answer: waits for the offer token, writes the answer token, takes the peer's channel.
send: sends FILE as binary messages, waits until every byte left (bufferedAmount 0), closes
      the channel and waits for it to be closed.
recv: writes every binary message to FILE until the channel closes.
Tokens are dcsend's (and Pion's): base64 of the JSON {"type","sdp"}, written to a temporary
name and renamed. Exit 0 on success, 1 on any error; progress on stderr.
"""

import asyncio
import base64
import json
import logging
import os
import sys

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

CHUNK = 16 * 1024
HIGH_WATER = 1024 * 1024


class SctpClose(logging.Filter):
    """Lets through aiortc's SCTP lines about stream resets and the association's end."""

    WORDS = ("Reset", "RECONFIG", "Abort", "aborted", "Shutdown", "->")

    def filter(self, record):
        text = record.getMessage()
        return any(word in text for word in self.WORDS)


def log_sctp_close():
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SctpClose())
    handler.setFormatter(logging.Formatter("aiortc sctp: %(message)s"))
    sctp = logging.getLogger("aiortc.rtcsctptransport")
    sctp.addHandler(handler)
    sctp.setLevel(logging.DEBUG)


def log(msg):
    print(f"aiortc: {msg}", file=sys.stderr, flush=True)


def write_token(path, desc):
    token = base64.b64encode(json.dumps({"type": desc.type, "sdp": desc.sdp}).encode())
    with open(path + ".tmp", "wb") as f:
        f.write(token + b"\n")
    os.rename(path + ".tmp", path)


async def read_token(path):
    while not os.path.exists(path):
        await asyncio.sleep(0.025)
    with open(path, "rb") as f:
        desc = json.loads(base64.b64decode(f.read().strip()))
    return RTCSessionDescription(sdp=desc["sdp"], type=desc["type"])


async def send(dc, path):
    with open(path, "rb") as f:
        data = f.read()
    low = asyncio.Event()
    dc.bufferedAmountLowThreshold = HIGH_WATER // 2
    dc.on("bufferedamountlow", low.set)
    for offset in range(0, len(data), CHUNK):
        while dc.bufferedAmount > HIGH_WATER:
            low.clear()
            await low.wait()
        dc.send(data[offset : offset + CHUNK])
    while dc.bufferedAmount > 0:
        await asyncio.sleep(0.01)
    log(f"sent {len(data)} bytes; closing the channel")
    dc.close()


async def main(role, mode, path, offer_path, answer_path):
    log_sctp_close()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    @pc.on("connectionstatechange")
    def on_state():
        log(f"connection {pc.connectionState}")
        if pc.connectionState == "failed":
            os._exit(1)

    opened = asyncio.get_running_loop().create_future()
    closed = asyncio.Event()
    parts = []

    def use(dc):
        @dc.on("message")
        def on_message(msg):
            if not isinstance(msg, str):
                parts.append(msg)
            elif mode == "send":
                # A dcsend receiver greets with a control message; a plain sender ignores it.
                log(f"ignoring a text message: {msg[:80]!r}")
            else:
                log(f"unexpected text message from a --raw sender: {msg[:80]!r}")
                os._exit(1)

        @dc.on("close")
        def on_close():
            log("channel closed")
            closed.set()

        if dc.readyState == "open":
            opened.set_result(dc)
        else:
            dc.on("open", lambda: opened.done() or opened.set_result(dc))

    if role == "offer":
        use(pc.createDataChannel("interop"))
        await pc.setLocalDescription(await pc.createOffer())
        write_token(offer_path, pc.localDescription)
        await pc.setRemoteDescription(await read_token(answer_path))
    else:
        pc.on("datachannel", use)
        await pc.setRemoteDescription(await read_token(offer_path))
        await pc.setLocalDescription(await pc.createAnswer())
        write_token(answer_path, pc.localDescription)

    dc = await opened
    log("channel open")
    if mode == "send":
        await send(dc, path)
    await closed.wait()
    if mode == "recv":
        data = b"".join(parts)
        with open(path, "wb") as f:
            f.write(data)
        log(f"received {len(data)} bytes")
    await pc.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) != 5 or args[0] not in ("offer", "answer") or args[1] not in ("send", "recv"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(*args))
