"""`kubesvc trace`: one JSON line per connection event from a real proxy: round robin, affinity hit, failover after a
refused dial, bytes and duration at close; bad input is a one-line error."""

from __future__ import annotations

import json
import re

from tests.cli.observe_bed import Bed, bed  # noqa: F401
from tests.support.procs import wait_for


def _trace(bed: Bed, *args: str):  # type: ignore[no-untyped-def]
    p = bed.spawn(bed.store_path, "trace", *args)
    wait_for(lambda: any(line.startswith("Tracing ") for line in p.stderr), timeout=20, what=f"trace attached; stderr {p.stderr}")
    return p


def test_trace_json_round_robin_affinity_and_failover(bed: Bed) -> None:  # noqa: F811
    p = _trace(bed, "svc/web", "-o", "json", "--count", "6")
    # Two new client addresses take two round-robin turns: one of them lands on the dead endpoint first, is refused,
    # and fails over to the live one. The first client then comes back: an affinity hit.
    a, b = bed.subnet + "11", bed.subnet + "12"
    assert bed.talk(a) == b"hello"
    assert bed.talk(b) == b"hello"
    assert bed.talk(a) == b"hello"
    events = [json.loads(p.wait_line("{", timeout=20)) for _ in range(6)]
    assert p.p.wait(20) == 0
    opens = [e for e in events if e["event"] == "open"]
    closes = [e for e in events if e["event"] == "close"]
    assert len(opens) == 3 and len(closes) == 3, events
    live = f"{bed.live.host}:{bed.live.port}"
    vip = f"{bed.vip[0]}:{bed.vip[1]}"
    for e in opens:
        assert e["service"] == "default/web" and e["port"] == "p"
        assert e["endpoint"] == live
        assert e["frontend"] == {"kind": "clusterIP", "address": vip}
    # a new client takes the next turn: the live endpoint (round robin) or the dead one, refused, then the live one
    assert opens[0]["reason"] in ("round robin", "failover") and opens[1]["reason"] in ("round robin", "failover")
    assert "failover" in (opens[0]["reason"], opens[1]["reason"]), opens
    for e in opens:
        if e["reason"] == "failover":
            assert e["failed"] == [{"endpoint": bed.dead, "error": "refused"}]
        else:
            assert "failed" not in e
    assert opens[2]["reason"] == "affinity" and opens[2]["client"].startswith(a + ":")
    for e in closes:
        assert e["endpoint"] == live and e["bytesIn"] >= 5 and e["bytesOut"] >= 5 and e["duration"] >= 0
    assert {e["id"] for e in opens} == {e["id"] for e in closes}


def test_trace_text_and_to_filter(bed: Bed) -> None:  # noqa: F811
    vip = f"{bed.vip[0]}:{bed.vip[1]}"
    p = _trace(bed, "--to", vip, "--count", "2")
    bed.talk(bed.subnet + "21")
    first = p.wait_line("", timeout=20)
    second = p.wait_line("", timeout=20)
    assert p.p.wait(20) == 0
    assert " open " in first and f"-> {vip} (clusterIP) => {bed.live.host}:{bed.live.port}" in first
    # bytes as the kernel counts them (TCP_INFO): a FIN may count as one
    assert " close " in second and re.search(r"  in [56] B  out [56] B  \d+\.\d ms$", second), second


def test_trace_bad_input(bed: Bed) -> None:  # noqa: F811
    from tests.support.procs import Proc

    def run(*args: str) -> tuple[int, list[str]]:
        p = Proc(bed.store_path, *args)
        code = p.p.wait(30)
        wait_for(lambda: p.p.stderr is not None and p.p.stderr.closed or p.stderr, timeout=5)
        return code, p.stderr

    code, err = run("trace", "svc/nope")
    assert code == 1 and err == ['Error from server (NotFound): services "nope" not found'], err
    code, err = run("trace", "--to", "nowhere")
    assert code == 1 and "is not IP:PORT" in err[0] and len(err) == 1
    code, err = run("trace")
    assert code == 1 and "you must specify a Service" in err[0]
    code, err = run("trace", "pod/web")
    assert code == 1 and "follows Services" in err[0]
