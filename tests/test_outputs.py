"""Streaming outputs: chunks committed as reports finish, --resume after a real interruption,
and clear errors for outputs that cannot be continued."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sectioncls.cli import main
from sectioncls.outputs import ChunkedFile, OutputError
from test_tagger import REPORTS, tiny_model  # noqa: F401 - the shared tiny checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Twelve reports: copies of the four examples under distinct names."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(3):
        for p in REPORTS:
            shutil.copy(p, folder / f"r{k}_{p.name}")
    return folder


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["doc_id"] for line in path.read_text("utf-8").splitlines()]


def test_chunks_are_committed_and_a_torn_chunk_is_dropped_on_resume(tmp_path):
    out = tmp_path / "units.jsonl"
    sink = ChunkedFile(out, "jsonl")
    sink.write_rows([{"doc_id": "a", "index": 0}, {"doc_id": "a", "index": 1}])
    sink.write_rows([{"doc_id": "b", "index": 0}])
    sink.close()  # the run stops here, then a torn write lands past the commit point
    with open(sink.part, "ab") as fh:
        fh.write(b'{"doc_id": "c", "ind')
    assert not out.exists()  # nothing under the output's name until the run is complete
    again = ChunkedFile(out, "jsonl", resume=True)
    assert again.done == {"a", "b"} and again.rows_before == 3
    again.write_rows([{"doc_id": "c", "index": 0}])
    again.finish()
    assert _ids(out) == ["a", "a", "b", "c"]
    assert not sink.part.exists() and not sink.log.exists()


def test_unfinished_work_is_never_overwritten_without_resume(tmp_path):
    out = tmp_path / "units.jsonl"
    ChunkedFile(out, "jsonl").close()
    with pytest.raises(OutputError, match="--resume"):
        ChunkedFile(out, "jsonl")


def test_resume_refuses_outputs_it_cannot_trust(tmp_path):
    out = tmp_path / "units.jsonl"
    out.write_text('{"doc_id": "a", "index": 0}\n{"doc_id": "a", "ind', "utf-8")
    with pytest.raises(OutputError, match="middle of a line"):
        ChunkedFile(out, "jsonl", resume=True)
    out.write_text("not json\n", "utf-8")
    with pytest.raises(OutputError, match="not a `sectioncls tag"):
        ChunkedFile(out, "jsonl", resume=True)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(OutputError, match="other columns"):
        ChunkedFile(other, "csv", resume=True, csv_fields=["doc_id", "text"])
    # A working file cut shorter than its commit log says.
    cut = ChunkedFile(tmp_path / "cut.jsonl", "jsonl")
    cut.write_rows([{"doc_id": "a"}])
    cut.close()
    cut.part.write_text("", "utf-8")
    with pytest.raises(OutputError, match="truncated"):
        ChunkedFile(tmp_path / "cut.jsonl", "jsonl", resume=True)


def test_cli_resume_after_a_killed_run(tiny_model, corpus, tmp_path):  # noqa: F811
    """A real interruption: the process is killed after its first commits, then resumed."""
    out = tmp_path / "units.jsonl"
    cmd = [
        sys.executable, "-m", "sectioncls.cli", "tag", str(corpus), "-m", str(tiny_model),
        "-o", str(out), "--chunk-size", "1", "--quiet", "--backend", "torch", "--dtype",
        "float32",
    ]  # fmt: skip
    log = out.with_name(f".{out.name}.part.json")
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and json.loads(log.read_text("utf-8") or "{}").get("bytes", 0) > 0:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    kept = set(_ids(out.with_name(f".{out.name}.part")))
    assert 0 < len(kept) < 12

    # Without --resume the kept work is protected; with it, only the rest is tagged.
    assert main(cmd[3:]) == 2
    assert main([*cmd[3:], "--resume"]) == 0
    full = tmp_path / "full.jsonl"
    assert main([*cmd[3:5], "-m", str(tiny_model), "-o", str(full), "--quiet"]) == 0
    got = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    ref = [json.loads(line) for line in full.read_text("utf-8").splitlines()]
    key = lambda r: (r["doc_id"], r["index"])  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, ref))  # every unit once, none twice
    assert not list(tmp_path.glob(".units.jsonl*"))


def test_cli_resume_extends_a_finished_csv(tiny_model, corpus, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "units.csv"
    first = sorted(corpus.glob("r0_*"))
    base = ["-m", str(tiny_model), "-o", str(out), "--format", "csv", "--quiet"]
    assert main(["tag", *map(str, first), *base]) == 0
    before = out.read_text("utf-8")
    assert main(["tag", str(corpus), *base, "--resume"]) == 0
    assert "(4 already there)" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert len({r["doc_id"] for r in rows}) == 12
    assert out.read_text("utf-8").startswith(before)  # the old rows stay as they were
    assert out.read_text("utf-8").count("doc_id,index") == 1  # one header


def test_cli_resume_needs_a_resumable_output(tiny_model, corpus, tmp_path, capsys):  # noqa: F811
    assert main(["tag", str(corpus), "-m", str(tiny_model), "--resume", "--quiet"]) == 2
    html = ["-o", str(tmp_path / "h"), "--format", "html", "--resume", "--quiet"]
    assert main(["tag", str(corpus), "-m", str(tiny_model), *html]) == 2
    assert "--resume continues" in capsys.readouterr().err


def test_cli_streams_json_and_table_to_stdout(tiny_model, corpus, capsys):  # noqa: F811
    files = [str(p) for p in sorted(corpus.glob("r0_*"))]
    assert main(["tag", *files, "-m", str(tiny_model), "--format", "json", "--chunk-size",
                 "1", "--quiet"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert len({r["doc_id"] for r in rows}) == 4
    assert main(["tag", *files, "-m", str(tiny_model), "--format", "table", "--chunk-size",
                 "1", "--quiet"]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert table.count("doc_id") == 1 and len(table.splitlines()) == len(rows) + 1


def test_cli_verbose_names_cpu_and_runtime(tiny_model, capsys):  # noqa: F811
    assert main(["tag", str(REPORTS[0]), "-m", str(tiny_model), "-v", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "cpu: " in err and "runtime: " in err and "reading: in order (" in err
    assert os.environ.get("CI") or "(" in err.split("runtime: ")[1]
