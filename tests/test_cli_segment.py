"""`sectioncls segment`: formats, inputs, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from sectioncls.cli import UNIT_FIELDS, main

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "examples" / "reports" / "000_9ab697e020cfd5b9.txt"


def test_jsonl_to_stdout(capsys):
    assert main(["segment", str(REPORT)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and set(rows[0]) == set(UNIT_FIELDS)
    text = REPORT.read_text("utf-8")
    assert all(text[r["start"] : r["end"]] == r["text"] for r in rows)
    assert {r["doc_id"] for r in rows} == {"000_9ab697e020cfd5b9"}


def test_folder_and_glob_inputs_and_json_output(tmp_path, capsys):
    out = tmp_path / "units.json"
    assert (
        main(["segment", str(ROOT / "examples" / "reports"), "--format", "json", "-o", str(out)])
        == 0
    )
    rows = json.loads(out.read_text("utf-8"))
    assert len({r["doc_id"] for r in rows}) == 4
    assert main(["segment", str(ROOT / "examples" / "reports" / "00[02]_*.txt")]) == 0
    docs = {json.loads(x)["doc_id"][:3] for x in capsys.readouterr().out.splitlines()}
    assert docs == {"000", "002"}


def test_table_format(capsys):
    assert main(["segment", str(REPORT), "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["doc_id", "index", "kind"]
    assert "一、2022年工作开展情况" in out


def test_bad_file_is_reported_and_others_still_written(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01\x02binary" * 100)
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("一、工作情况\n全年办理案件12件。\n".encode("gbk"))
    out = tmp_path / "out.jsonl"
    assert main(["segment", str(bad), str(gbk), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad.txt" in err and "binary" in err
    rows = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["一、工作情况", "全年办理案件12件。"]


def test_all_inputs_failing_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "out.jsonl"
    assert main(["segment", str(empty), "-o", str(out)]) == 1
    assert not out.exists()
    assert not list(tmp_path.glob(".out.jsonl*"))  # no temp file left behind
    assert "empty.txt" in capsys.readouterr().err


def test_unmatched_glob_is_a_usage_error(tmp_path, capsys):
    assert main(["segment", str(tmp_path / "*.txt")]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly():
    """`sectioncls segment … | true`: no traceback, the exit status of a SIGPIPE'd program."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "sectioncls.cli", "segment", str(ROOT / "examples" / "reports")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader leaves before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
