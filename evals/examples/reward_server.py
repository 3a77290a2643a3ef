#!/usr/bin/env python3
"""A reward server in Python that hybrid's reward client can use (docs/evals.md, "Reward server").

It speaks the wire protocol of docs/proto.md with pyzmq and msgpack (pip install pyzmq msgpack):
every message is one ZeroMQ part holding the msgpack array ["HYBR", 1, type, body], body a map.
The orchestrator's DEALER sends reward_request (type 3) and gets reward_result (type 4) back; a
ROUTER hands us the peer's routing id as the first part, so an answer goes back with that id in
front. control (type 6) with command "shutdown" stops the server.

The reward here is a stand-in for yours: 1.0 when the last number in the completion equals the last
number in the reference, else 0.0, plus a "length" score (characters). Replace `score`.
A bad frame is logged and dropped, never answered: without a trajectory_id there is nothing to
answer. Runs without CURVE, so bind loopback only; for other hosts use CURVE (zmq.auth) with the
key files of docs/proto.md, "Security".

    python3 reward_server.py --bind tcp://127.0.0.1:5601
"""
import argparse
import re
import sys

import msgpack
import zmq

MAGIC, VERSION = "HYBR", 1
REWARD_REQUEST, REWARD_RESULT, CONTROL = 3, 4, 6
REQUEST_FIELDS = {"trajectory_id", "verifier", "completion_text", "completion_tokens", "reference", "metadata"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def last_number(text):
    found = NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


def score(request):
    """(reward, scores, error) for one reward_request body; error "" means scored."""
    want = last_number(request["reference"])
    if want is None:
        return 0.0, {}, "reference %r holds no number" % request["reference"][:60]
    got = last_number(request["completion_text"])
    return (1.0 if got == want else 0.0), {"length": float(len(request["completion_text"]))}, ""


def frame(msg_type, body):
    return msgpack.packb([MAGIC, VERSION, msg_type, body], use_bin_type=True)


def open_frame(data):
    """(type, body) of a valid frame, else raises ValueError saying why."""
    try:
        value = msgpack.unpackb(data, raw=False)
    except Exception as e:  # msgpack raises several types for malformed input
        raise ValueError("not msgpack: %s" % e)
    if not (isinstance(value, list) and len(value) == 4):
        raise ValueError("not an array of 4")
    magic, version, msg_type, body = value
    if magic != MAGIC:
        raise ValueError("wrong magic %r" % (magic,))
    if version != VERSION:
        raise ValueError("version %r is not supported (this server speaks version %d)" % (version, VERSION))
    if not isinstance(body, dict):
        raise ValueError("body is not a map")
    return msg_type, body


def serve(bind):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a peer that left raises instead of vanishing
    sock.setsockopt(zmq.MAXMSGSIZE, 64 << 20)  # the protocol's frame limit
    sock.bind(bind)
    print("reward-server: listening on %s" % sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    served = dropped = 0
    while True:
        parts = sock.recv_multipart()
        peer = parts[0]
        try:
            if len(parts) != 2:
                raise ValueError("%d parts (a frame is one part)" % (len(parts) - 1))
            msg_type, body = open_frame(parts[1])
            if msg_type == CONTROL and body.get("command") == "shutdown":
                print("shutdown requested by %r: %s" % (peer, body.get("reason", "")), file=sys.stderr)
                break
            if msg_type != REWARD_REQUEST:
                raise ValueError("message type %r (this server takes reward_request and control)" % (msg_type,))
            if set(body) != REQUEST_FIELDS:
                raise ValueError("reward_request fields %s" % sorted(body))
            if not (isinstance(body["trajectory_id"], int) and isinstance(body["completion_text"], str)
                    and isinstance(body["reference"], str)):
                raise ValueError("reward_request field of the wrong type")
        except ValueError as e:
            dropped += 1
            print("dropped a frame from %r: %s" % (peer, e), file=sys.stderr)
            continue
        reward, scores, error = score(body)
        result = {"trajectory_id": body["trajectory_id"], "reward": reward, "scores": scores, "error": error}
        try:
            sock.send_multipart([peer, frame(REWARD_RESULT, result)])
            served += 1
        except zmq.ZMQError as e:
            print("result for %d not delivered: %s" % (body["trajectory_id"], e), file=sys.stderr)
    print("reward-server: stopped: served %d, dropped %d" % (served, dropped), flush=True)
    sock.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bind", default="tcp://127.0.0.1:5601", help="endpoint; tcp://127.0.0.1:* picks a port")
    try:
        serve(parser.parse_args().bind)
    except KeyboardInterrupt:
        pass
