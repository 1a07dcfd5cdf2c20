"""Web pages as input: the report's main text without the site's chrome, through trafilatura.

The pages in tests/pages/ were written for these tests in the shapes of government sites: a
GB2312 page with navigation, breadcrumbs, share row, related links and footer; a UTF-8 page
with a banner, search box, sidebar, metadata table, signature and button row; an index page
with no report on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sectioncls.cli import main
from sectioncls.segment import segment
from sectioncls.textio import ReportDecodeError, read_document

pytest.importorskip("trafilatura")
PAGES = Path(__file__).resolve().parent / "pages"
CHROME = ("网站首页", "当前位置", "相关链接", "主办单位", "备案号", "热点专题", "机构职能",
          "WELCOME", "请输入关键字", "版权所有", "县领导调研")  # fmt: skip


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("county_agriculture_gbk.html", "岚山县农业农村局2024年工作总结"),
        ("city_audit_zoom.html", "澄阳市审计局2023年度工作总结"),
    ],
)
def test_main_text_keeps_title_and_headings_and_drops_chrome(page, title):
    text = read_document(PAGES / page)
    lines = text.splitlines()
    assert lines[0] == title  # decoded (GB2312 too) and the title first: the model reads it
    for chrome in CHROME:
        assert chrome not in text, chrome
    units = segment(text)
    top = [u.text for u in units if u.kind == "heading" and u.level == 1]
    assert len(top) == 3 and top[0].startswith("一、") and top[2].startswith("三、")
    assert [u.section for u in units if u.kind == "heading" and u.level == 1][1:] == [
        "problem",
        "plan",
    ]
    body = [u for u in units if u.kind == "sentence"]
    assert any("亿元" in u.text or "万" in u.text for u in body)
    # Whatever chrome the extractor keeps inside the article is page metadata, not a unit to tag.
    for u in units:
        if "索引号" in u.text or "打印" in u.text or (u.text.endswith("日") and len(u.text) < 14):
            assert u.kind == "meta", u.text


def test_a_page_without_a_report_is_a_clear_error():
    with pytest.raises(ReportDecodeError, match="no main text"):
        read_document(PAGES / "index_only.html")


def test_cli_reads_pages_beside_text_files(tmp_path, capsys):
    bad = PAGES / "index_only.html"
    good = PAGES / "city_audit_zoom.html"
    out = tmp_path / "units.jsonl"
    assert main(["segment", str(good), str(bad), "-o", str(out)]) == 1  # one failed, one written
    err = capsys.readouterr().err
    assert "index_only.html" in err and "no main text" in err
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert {r["doc_id"] for r in rows} == {"city_audit_zoom"}
