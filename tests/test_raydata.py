"""Tagging on Ray Data, with a real local Ray on 2 CPUs: the same labels as in-process
tagging, one bad file reported while the rest is written."""

from __future__ import annotations

import shutil

import pytest

from sectioncls import ReportTagger
from sectioncls.cli import main
from test_tagger import REPORTS, tiny_model  # noqa: F401 - the shared tiny checkpoint

ray = pytest.importorskip("ray")
pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_run_matches_in_process_tagging_and_reports_a_bad_file(
    local_ray,
    tiny_model,  # noqa: F811
    tmp_path,
    capsys,
):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in REPORTS:
        shutil.copy(p, corpus / p.name)
    (corpus / "broken.txt").write_bytes(b"\x00\x01\x02 binary junk \xff\xfe")
    out = tmp_path / "units"
    args = ["tag-ray", str(corpus), "-m", str(tiny_model), "-o", str(out), "--workers", "2"]
    args += ["--chunk-size", "2", "--backend", "torch", "--dtype", "float32"]
    assert main(args) == 1  # one file failed, the rest written
    err = capsys.readouterr().err
    assert "broken.txt" in err and f"from {len(REPORTS)} report(s)" in err
    got = pd.read_parquet(out).sort_values(["doc_id", "index"])
    ref = ReportTagger.from_pretrained(tiny_model, backend="torch", dtype="float32")
    reports = ref.tag_many(
        [p.read_text("utf-8") for p in REPORTS], doc_ids=[p.stem for p in REPORTS]
    )
    want = [(r.doc_id, u.index, u.category, u.metric) for r in reports for u in r.units]
    rows = list(zip(got["doc_id"], got["index"], got["category"], got["metric"], strict=True))
    assert sorted(rows) == sorted(want)
    assert not list(tmp_path.glob(".units.tmp"))


def test_ray_refuses_a_non_empty_output_and_a_missing_model(
    local_ray,
    tiny_model,  # noqa: F811
    tmp_path,
    capsys,
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", "utf-8")
    assert main(["tag-ray", str(REPORTS[0]), "-m", str(tiny_model), "-o", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text("utf-8") == "mine"
    assert main(["tag-ray", str(REPORTS[0]), "-m", str(tmp_path / "nomodel"), "-o",
                 str(tmp_path / "new")]) == 2  # fmt: skip
    assert "no model here" in capsys.readouterr().err
