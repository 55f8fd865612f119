"""Fuzzed gRPC at every door: hypothesis makes requests for every RPC of every running service
from the protobuf descriptors (random and hostile values, wrong enum numbers, huge strings,
negative numbers, unset fields, timestamps out of range, unicode) and sends them with a valid
token of a tenant of its own. No call may end in UNKNOWN or INTERNAL (a bug nobody named), or
UNAVAILABLE (a crashed server); streams may wait (they are cut by a short deadline). After the
run every service still answers its health check, and its process is alive.

All the failures of a run are collected and reported together, with the offending requests."""

from __future__ import annotations

import collections
import os
import time

import grpc
import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contactcenter.testing.protofuzz import requests
from contactcenter.testing.rpcs import Rpc, service_rpcs
from contactcenter.testing.system import System, new_tenant, token_metadata

pytestmark = pytest.mark.slow

#: Requests per service (its RPCs share them): 400 keep the six services within about three
#: minutes on a busy two-core machine; CC_FUZZ_EXAMPLES=5000 for a longer hunt.
EXAMPLES_PER_SERVICE = int(os.environ.get("CC_FUZZ_EXAMPLES", "400"))
UNARY_TIMEOUT_S = 5.0
STREAM_TIMEOUT_S = 0.2
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE}

SERVICES = ["interactions", "routing", "profiles", "email", "reporting", "wfm"]


def _call(rpc: Rpc, channel: grpc.Channel, request: object, md: object) -> grpc.StatusCode:
    method = rpc.callable(channel)
    try:
        if rpc.streaming:
            # The first message (or the stream's end) is enough: a stream that waits for
            # news is cut by the deadline, one that answers is cancelled after its first.
            stream = method(request, metadata=md, timeout=STREAM_TIMEOUT_S)
            for _ in stream:
                stream.cancel()
                break
        else:
            method(request, metadata=md, timeout=UNARY_TIMEOUT_S)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        if code in FORBIDDEN:
            raise _Forbidden(code, error.details() or "") from None
        return code
    return grpc.StatusCode.OK


class _Forbidden(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code


@pytest.mark.parametrize("service", SERVICES)
def test_fuzzed_requests_never_crash_a_service_or_end_unknown(system: System, service: str) -> None:
    rpcs = list(service_rpcs(service, system.address(service)))
    assert rpcs, f"{service} serves no RPC"
    md = token_metadata(new_tenant("fuzz"), "agent-fuzz")
    codes: collections.Counter[tuple[str, str]] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()
    failures: dict[str, list[str]] = collections.defaultdict(list)
    started = time.monotonic()

    with grpc.insecure_channel(
        system.address(service),
        options=[("grpc.max_send_message_length", 16 * 1024 * 1024)],
    ) as channel:

        @settings(
            max_examples=EXAMPLES_PER_SERVICE,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def fuzz(data: st.DataObject) -> None:
            rpc = data.draw(st.sampled_from(rpcs), label="rpc")
            request = data.draw(requests(rpc.descriptor.input_type), label="request")
            began = time.monotonic()
            try:
                code = _call(rpc, channel, request, md)
            except _Forbidden as error:
                seconds[rpc.key] += time.monotonic() - began
                codes[(rpc.key, error.code.name)] += 1
                if len(failures[rpc.key]) < 3:
                    shown = text_format.MessageToString(request, as_utf8=True)
                    failures[rpc.key].append(f"{error}\n  request: {shown[:600]!r}")
                return
            seconds[rpc.key] += time.monotonic() - began
            codes[(rpc.key, code.name)] += 1

        fuzz()

    took = time.monotonic() - started
    total = sum(codes.values())
    by_rpc = collections.Counter(key for key, _ in codes.elements())
    slowest = ", ".join(f"{k} {v:.1f}s" for k, v in seconds.most_common(3))
    print(f"{service}: {total} fuzzed requests over {len(rpcs)} RPCs in {took:.0f}s ({slowest})")
    print(f"  status codes: {dict(sorted(codes.items()))}")
    alive = system.alive(service)
    serving = system.serving(service)
    assert alive, f"{service} died under fuzzing:\n{system.log_tail(service)}"
    assert serving, f"{service} no longer SERVING after fuzzing:\n{system.log_tail(service)}"
    assert not failures, "\n".join(
        f"{key}: {' | '.join(found)}" for key, found in sorted(failures.items())
    )
    assert total >= 0.9 * EXAMPLES_PER_SERVICE, f"only {total} requests fuzzed"
    missed = [rpc.key for rpc in rpcs if by_rpc[rpc.key] == 0]
    assert not missed, f"RPCs never fuzzed: {missed}"
