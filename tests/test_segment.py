"""Segmenter: golden tests on the four real reports, hard cases, and properties."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sectioncls.segment import classify_section, segment
from sectioncls.textio import ReportDecodeError, decode_report, doc_id_from_path, read_report

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted((ROOT / "examples" / "reports").glob("*.txt"))
GOLDEN = json.loads((Path(__file__).parent / "golden" / "reports.json").read_text("utf-8"))


def check_invariants(text: str, units) -> None:
    """Offsets reconstruct the text; units are ordered, disjoint, trimmed; gaps are whitespace."""
    pos = 0
    for i, u in enumerate(units):
        assert u.index == i
        assert text[u.start : u.end] == u.text
        assert u.text and u.text == u.text.strip(" \t\r\n\f\v\u3000\xa0\ufeff")
        assert u.start >= pos
        assert not text[pos : u.start].strip(" \t\r\n\f\v\u3000\xa0\ufeff")
        pos = u.end
    assert not text[pos:].strip(" \t\r\n\f\v\u3000\xa0\ufeff")


def texts(units, kind=None):
    return [u.text for u in units if kind is None or u.kind == kind]


# --- golden: the four real reports -----------------------------------------------------------


@pytest.fixture(scope="module", params=REPORTS, ids=lambda p: p.stem[:3])
def report(request):
    text = read_report(request.param)
    return doc_id_from_path(request.param), text, segment(text)


def test_corpus_is_present():
    assert len(REPORTS) == 4


def test_golden_headings_levels_and_sections(report):
    doc_id, _, units = report
    got = [[u.level, u.section, u.text] for u in units if u.kind == "heading"]
    assert got == GOLDEN[doc_id]["headings"]
    assert len(units) == GOLDEN[doc_id]["n_units"]


def test_golden_meta_lines(report):
    doc_id, _, units = report
    assert texts(units, "meta") == GOLDEN[doc_id]["meta"]
    assert all(u.section is None for u in units if u.kind == "meta")


def test_offsets_exact_and_nothing_lost(report):
    _, text, units = report
    check_invariants(text, units)


_ENUM_AT_CLAUSE = re.compile(r"(?:(?<=[。；;：:\n])|^)\s*([一二三四五六七八九十]+是)", re.M)


def test_every_enumerated_item_is_its_own_unit(report):
    _, text, units = report
    starts = {u.start: u for u in units}
    for m in _ENUM_AT_CLAUSE.finditer(text):
        unit = starts.get(m.start(1))
        assert unit is not None, f"no unit starts at {text[m.start(1) : m.start(1) + 20]!r}"
        assert unit.kind == "item"
        # an item ends at its own stop or at the ； before the next item, never later
        nxt = _ENUM_AT_CLAUSE.search(text, m.end(1))
        if nxt:
            assert unit.end <= nxt.start(1)


def test_sections_of_known_reports():
    expected = {
        "000_9ab697e020cfd5b9": ["achievement", "problem", "plan"],
        "002_3b8261d00e9e6bab": ["achievement"] * 6,
        "003_7d11652387bc1ec1": ["achievement", "achievement", "problem", "plan"],
        "004_6dbec4c0adf09e2a": ["achievement", "problem", "plan"],
    }
    for path in REPORTS:
        units = segment(read_report(path))
        tops = [u.section for u in units if u.kind == "heading" and u.level == 1]
        assert tops == expected[doc_id_from_path(path)]
        before = [u for u in units if u.index < next(x.index for x in units if x.level == 1)]
        assert all(u.section is None for u in before)


def test_heading_path_nests():
    units = segment(read_report(REPORTS[0]))
    u = next(u for u in units if u.text.startswith("一是彰显法治红色底色"))
    assert u.heading_path == ("一、2022年工作开展情况", "(一)聚焦法治护航,推进全面依法治市")
    assert u.section == "achievement"


# --- hard cases ------------------------------------------------------------------------------


def test_run_in_heading_is_split_from_its_first_sentence():
    text = "二、存在问题\n(一)改革创新仍有短板。对全面依法治市的总结提炼不多。\n"
    units = segment(text)
    assert [(u.kind, u.level, u.text) for u in units] == [
        ("heading", 1, "二、存在问题"),
        ("heading", 2, "(一)改革创新仍有短板。"),
        ("sentence", None, "对全面依法治市的总结提炼不多。"),
    ]
    assert units[2].heading_path == ("二、存在问题", "(一)改革创新仍有短板。")
    assert {u.section for u in units} == {"problem"}


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("一、工作开展情况", 1),
        ("十二、其他工作", 1),
        ("第一部分 工作开展情况", 1),
        ("第三章 下一步工作", 1),
        ("（一）深化改革", 2),
        ("(二)深化改革", 2),
        ("1.完善制度", 3),
        ("2、完善制度", 3),
        ("12．完善制度", 3),
        ("（1）健全机制", 4),
        ("(3)健全机制", 4),
        ("①健全机制", 5),
    ],
)
def test_heading_levels(line, level):
    units = segment(f"前言。\n{line}\n正文一句。")
    heading = units[1]
    assert (heading.kind, heading.level, heading.text) == ("heading", level, line)


def test_decimal_and_list_numbers_are_not_stops():
    units = segment("成功率达95.3%,金额3.5亿元。1.2万人次参与。")
    assert texts(units) == ["成功率达95.3%,金额3.5亿元。", "1.2万人次参与。"]


def test_no_split_inside_quotes_brackets_or_book_titles():
    text = (
        "印发《关于加强工作的意见。试行》,提出“法治是最好的营商环境。再强调”理念(见附件。)。"
        "下一句。"
    )
    assert texts(segment(text)) == [
        "印发《关于加强工作的意见。试行》,提出“法治是最好的营商环境。再强调”理念(见附件。)。",
        "下一句。",
    ]


def test_closing_quote_after_stop_stays_with_sentence():
    text = "他指出:“法治是最好的营商环境。”我们坚持这一理念。"
    assert texts(segment(text)) == ["他指出:“法治是最好的营商环境。”", "我们坚持这一理念。"]


def test_a_note_closing_the_line_stays_with_its_item():
    """工作要点 items end with who carries them out: (责任处室：…) is not a unit of its own,
    while a line that is only a note stays one."""
    text = (
        "1. 强化经济运行调度。每季度报送分析报告1次。（责任处室：综合处）\n"
        "2. 扩大有效投资。（牵头单位：投资处）下半年开工项目50个。\n"
        "（此件主动公开）"
    )
    assert texts(segment(text)) == [
        "1. 强化经济运行调度。",
        "每季度报送分析报告1次。（责任处室：综合处）",
        "2. 扩大有效投资。",
        "（牵头单位：投资处）下半年开工项目50个。",
        "（此件主动公开）",
    ]


def test_ellipsis_is_not_a_stop():
    assert texts(segment("开展调解、普法、援助……各项工作稳步推进。")) == [
        "开展调解、普法、援助……各项工作稳步推进。"
    ]


def test_semicolon_splits_only_between_enumerated_items():
    text = "主要有三:一是机制不健全;二是力量不足；三是保障不够,经费偏少;人员偏少。"
    units = segment(text)
    assert [(u.kind, u.text) for u in units] == [
        ("sentence", "主要有三:"),
        ("item", "一是机制不健全;"),
        ("item", "二是力量不足；"),
        ("item", "三是保障不够,经费偏少;人员偏少。"),
    ]


def test_first_second_and_qi_enumerations():
    units = segment("第一,加强领导;第二,完善制度。其一,抓落实;其二,抓督查。")
    assert [u.kind for u in units] == ["item"] * 4


def test_words_containing_shi_are_not_items():
    units = segment("统一是基础,唯一是目标。")
    assert [u.kind for u in units] == ["sentence"]


def test_ascii_and_fullwidth_stops():
    assert texts(segment("完成任务!还有不足?继续努力.下一步加强。")) == [
        "完成任务!",
        "还有不足?",
        "继续努力.",
        "下一步加强。",
    ]


def test_crlf_indentation_and_fullwidth_spaces():
    text = (
        "\ufeff一、工作情况\r\n\u3000\u3000全年办理案件12件。\r\n\r\n"
        "    二、存在问题\r\n  力量不足。\r\n"
    )
    units = segment(text)
    check_invariants(text, units)
    assert [u.text for u in units] == [
        "一、工作情况",
        "全年办理案件12件。",
        "二、存在问题",
        "力量不足。",
    ]


def test_traditional_sections_and_chrome():
    text = (
        "一、主要舉措和成效\n辦理案件。\n二、存在不足\n仍有差距。\n"
        "三、2025工作計劃\n將繼續推進。\n相關文章\n"
    )
    units = segment(text)
    assert [u.section for u in units] == [
        "achievement",
        "achievement",
        "problem",
        "problem",
        "plan",
        "plan",
        None,
    ]
    assert units[-1].kind == "meta"


@pytest.mark.parametrize(
    "line",
    [
        "索引号:11360700MB1659000X/2023-00123",
        "发布日期:2023-03-04",
        "• 听全文",
        "分享到",
        "扫一扫在手机打开当前页",
        "2023-06-16",
        "-",
        "粵公網安備 44070302000670",
        "来源:广州市司法局",
    ],
)
def test_page_chrome_is_meta(line):
    units = segment(f"{line}\n一、工作情况\n办理案件。")
    assert units[0].kind == "meta" and units[0].text == line


@pytest.mark.parametrize(
    ("heading", "section"),
    [
        ("一、2022年工作开展情况", "achievement"),
        ("一、主要举措和成效", "achievement"),
        ("二、存在问题", "problem"),
        ("二、问题不足", "problem"),
        ("二、推进法治政府建设还存在的不足", "problem"),
        ("三、2023年工作打算", "plan"),
        ("三、2024年工作思路", "plan"),
        ("四、下一步工作", "plan"),
        ("四、2025工作計劃", "plan"),
        ("二、存在問題", "problem"),
        ("五、其他", None),
        # how a task went is a review, whatever the task is called
        ("一、2023年重点任务落实情况", "achievement"),
        ("二、年度工作计划完成情况", "achievement"),
        ("一、反馈问题整改落实情况", "achievement"),
        ("一、上半年工作完成情况和下半年工作打算", "plan"),
        ("二、2024年重点任务", "plan"),
    ],
)
def test_classify_section(heading, section):
    assert classify_section(heading) == section


def test_title_before_first_heading():
    units = segment("2022年全市司法行政工作总结\n全年工作取得成效。\n一、工作情况\n办理案件。")
    assert (units[0].kind, units[0].level) == ("heading", 0)
    assert units[-1].heading_path == ("一、工作情况",)  # the title is not part of paths


def test_long_numbered_paragraph_is_an_item_not_a_heading():
    body = "全年共办理法律援助案件1535件,挽回经济损失729万余元," * 3 + "群众满意率达98%。"
    units = segment(f"一、工作情况\n1.{body}\n")
    assert units[1].kind == "item"


def test_huge_single_line_is_linear_and_exact():
    text = "全年办理案件12件;" * 20000 + "。"
    units = segment(text)
    check_invariants(text, units)
    assert len(units) == 1


def test_empty_and_whitespace_text():
    assert segment("") == []
    assert segment(" \n\u3000\r\n") == []


# --- decoding at the file boundary -----------------------------------------------------------

SAMPLE = "一、工作情况\n全年办理案件1535件，成功率95.3%。\n"


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE.encode("utf-8"),
        b"\xef\xbb\xbf" + SAMPLE.encode("utf-8"),
        SAMPLE.encode("gbk"),
        SAMPLE.encode("gb18030"),
        SAMPLE.encode("utf-16"),
    ],
    ids=["utf8", "utf8-bom", "gbk", "gb18030", "utf16-bom"],
)
def test_decode_encodings(data):
    assert decode_report(data, "x.txt") == SAMPLE


def test_decode_binary_is_a_clear_error(tmp_path):
    p = tmp_path / "junk.txt"
    p.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ReportDecodeError, match=r"junk\.txt.*binary"):
        read_report(p)


def test_empty_file_is_a_clear_error(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_bytes(b"\n \n")
    with pytest.raises(ReportDecodeError, match=r"empty\.txt.*empty"):
        read_report(p)


def test_doc_id_from_path():
    assert doc_id_from_path("/a/b/000_9ab697e020cfd5b9.txt") == "000_9ab697e020cfd5b9"
    assert doc_id_from_path("报告 2023.docx") == "报告_2023"


# --- properties --------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("法治建设工作成效问题计划一二三是第其")
    + list("。！？!?.；;：:，,、“”‘’「」『』《》()（）【】…")
    + list("0123456789%")
    + [" ", "\u3000", "\n", "\r\n", "\t", "一是", "(一)", "一、", "1.", "相关文章", "\ufeff"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=120).map("".join))
def test_property_offsets_reconstruct_and_nothing_lost(text):
    units = segment(text)
    check_invariants(text, units)
    # every non-whitespace character is in exactly one unit
    covered = sum(len(u.text) for u in units)
    gaps = text
    for u in reversed(units):
        gaps = gaps[: u.start] + gaps[u.end :]
    assert covered + len(gaps) == len(text)
    assert not gaps.strip(" \t\r\n\f\v\u3000\xa0\ufeff")


@settings(max_examples=200, deadline=None)
@given(st.lists(_ALPHABET, max_size=80).map("".join))
def test_property_segmentation_is_deterministic_and_stable_under_prefix_lines(text):
    units = segment(text)
    # A title line: the segmenter reads lines before the body starts (titles, addressees)
    # differently from lines after it (signatures), so a body sentence as prefix would change
    # those calls by design; a title does not change where the body starts.
    prefix = "前言\n"
    shifted = segment(prefix + text)
    body = [u for u in shifted if u.start >= len(prefix)]
    assert [(u.text, u.start - len(prefix)) for u in body][-len(units) or len(body) :] == [
        (u.text, u.start) for u in units
    ][-len(units) or len(units) :]


# --- page chrome, wrappers and titles of other sites and issuers ---------------------------------
CHROME_LINES = [
    "当前位置：首页 > 政务公开 > 工作总结",
    "您的位置: 首页 » 信息公开",
    "首页 > 信息公开 > 政府信息公开年报",
    "[ 索引号 ] | 11330300/2024-00012 | [ 发文字号 ] | |",
    "索引号：\t1133/2024-08\t主题分类：\t市场监管",
    "WELCOME TO 某某市人民政府",
    "欢迎访问某某市医疗保障局网站",
    "【打印本页】　【关闭窗口】",
    "（此件主动公开）",
    "青农发〔2025〕3号",
    "抄送：县委办公室，县人民政府办公室。",
    "某县教育局办公室                2024年2月26日印发",
    "2024327",
    "20241227",
    "（2023年11月8日）",
    "发布者：党政办　发布时间：2023-12-28　阅读次数：",
    "（责任编辑：周雯）",
    "述职人：柳塘街道党工委书记　何振邦",
    "主辦單位：沙汀區人民政府辦公室　　網站標識碼：3309120017",
]


@pytest.mark.parametrize("line", CHROME_LINES)
def test_chrome_of_other_sites_is_meta(line):
    units = segment("某局2024年工作总结\n" + line + "\n全年办结案件12件。\n")
    assert [u.kind for u in units if u.text == line.strip()] == ["meta"], units


def test_wrapper_title_addressee_and_signature():
    text = (
        "某县教育局关于印发《某县教育局2025年工作要点》的通知\n某教〔2025〕6号\n"
        "各乡镇中心学校，县直各学校：\n现将《某县教育局2025年工作要点》印发给你们，请认真落实。\n"
        "某县教育局\n2025年2月26日\n（此件主动公开）\n某县教育局2025年工作要点\n一、总体要求\n"
        "坚持稳中求进。\n"
    )
    units = segment(text)
    kinds = {u.text: (u.kind, u.level) for u in units}
    assert kinds["某县教育局关于印发《某县教育局2025年工作要点》的通知"] == ("heading", 0)
    assert kinds["各乡镇中心学校，县直各学校："][0] == "meta"
    assert kinds["某县教育局"][0] == "meta"  # the notice's signature
    assert kinds["某县教育局2025年工作要点"] == ("heading", 0)  # the inner title
    # a plan-only document: every part is a plan, even under a heading the rule cannot read
    assert units[-1].section == "plan"


def test_a_transition_is_not_a_title_and_the_body_name_at_the_end_is_a_signature():
    text = "某镇2024年工作总结\n现将有关情况报告如下：\n全年完成投资3亿元。\n某镇人民政府\n"
    kinds = [(u.text, u.kind, u.level) for u in segment(text)]
    assert kinds[1] == ("现将有关情况报告如下：", "sentence", None)
    assert kinds[-1] == ("某镇人民政府", "meta", None)


def test_door_portal_sentence_is_not_chrome():
    # "…门户网站…" inside a result sentence of an information-disclosure report is text.
    units = segment(
        "某委2024年政府信息公开工作年度报告\n全年通过委门户网站主动公开政府信息1436条。\n"
    )
    assert units[-1].kind == "sentence"
