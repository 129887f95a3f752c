"""record_takes (issue 34 item 3): several takes in a row as a library call, judged there.

The takes come from a stand-in for record_take, so the series' own rules are tested
without an audio device: how many takes, what stops it, what is printed, which fail.
"""

from __future__ import annotations

import signal

import pytest

from guitarlab.corpus.checks import Finding, findings_to_json
from guitarlab.recorder import record_takes


def row(take: int, *, status: str = "", errors: tuple[str, ...] = (), role: str = "") -> dict:
    findings = [Finding(name, "error", f"{name} found") for name in errors]
    rid = f"strat-lead-t{take:03d}-raw" + (f"-{role}" if role else "")
    return {
        "id": rid,
        "path": f"takes/{rid}.wav",
        "frames": 48000,
        "sample_rate": 48000,
        "peak_dbfs": -12.0,
        "rms_dbfs": -24.0,
        "gain_db": 0.0,
        "status": status,
        "checks": findings_to_json(findings),
    }


def fake_record(takes: list[list[dict] | None], calls: list[dict]):
    """A record_take that hands out ``takes`` in order (None: discarded)."""

    def record(corpus, *, rows_out, **options):
        handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        calls.append({"corpus": corpus, "handlers": handlers, **options})
        rows = takes[len(calls) - 1]
        if rows is None:
            return None
        rows_out.extend(rows)
        return rows[0]

    return record


def test_takes_in_a_row_print_their_lines_and_list_the_failed(monkeypatch) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    said, notices, calls = [], [], []
    takes = [[row(1)], [row(2, errors=("clipping", "hum"))], [row(3)]]
    report = record_takes(
        "corpus",
        takes=3,
        pause_s=4,
        say=said.append,
        notice=notices.append,
        record=fake_record(takes, calls),
        guitar="strat",
    )
    assert len(calls) == 3 and all(c["guitar"] == "strat" for c in calls)
    assert [r["id"] for r in report.rows] == [t[0]["id"] for t in takes]
    assert report.failed == ["strat-lead-t002-raw (clipping, hum)"] and report.stopped == "done"
    assert notices == ["next take in 4 s (Ctrl-C to stop)"] * 2
    assert any(line.startswith("takes/strat-lead-t002-raw.wav: 1.0 s") for line in said)
    # during a take Ctrl-C and SIGTERM stop it (KeyboardInterrupt); after, as they were
    sigint, sigterm = calls[0]["handlers"]
    assert sigint is signal.default_int_handler and sigterm not in before
    with pytest.raises(KeyboardInterrupt):
        sigterm(signal.SIGTERM, None)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.parametrize(
    ("second", "stopped", "recorded"),
    [([row(2, status="partial")], "partial", 2), (None, "discarded", 1)],
)
def test_a_take_cut_short_stops_the_series(second, stopped, recorded, monkeypatch) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)
    said, calls = [], []
    report = record_takes(
        "corpus",
        takes=3,
        say=said.append,
        notice=said.append,
        record=fake_record([[row(1)], second, [row(3)]], calls),
    )
    assert len(calls) == 2 and report.stopped == stopped and len(report.rows) == recorded
    assert ("take discarded" in said) == (second is None)


def test_every_input_of_a_take_is_judged(monkeypatch) -> None:
    inputs = [row(1, role="di"), row(1, role="mic", errors=("silence",))]
    report = record_takes("corpus", say=lambda _: None, record=fake_record([inputs], []))
    assert [r["id"] for r in report.rows] == ["strat-lead-t001-raw-di", "strat-lead-t001-raw-mic"]
    assert report.failed == ["strat-lead-t001-raw-mic (silence)"]


def test_ctrl_c_in_the_pause_stops_before_the_next_take(monkeypatch) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("time.sleep", interrupted)
    calls: list[dict] = []
    report = record_takes(
        "corpus",
        takes=3,
        say=lambda _: None,
        notice=lambda _: None,
        record=fake_record([[row(1)], [row(2)]], calls),
    )
    assert len(calls) == 1 and report.stopped == "interrupted" and len(report.rows) == 1
