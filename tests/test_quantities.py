"""Quantity extraction from metric units."""

from __future__ import annotations

import pytest

from sectioncls.quantities import extract_quantities, parse_chinese_number


@pytest.mark.parametrize(
    ("s", "value"),
    [
        ("三千", 3000),
        ("十二", 12),
        ("两百五十", 250),
        ("1.2万", 12000),
        ("3亿", 3e8),
        ("一万二千", 12000),
        ("九", 9),
        ("abc", None),
    ],
)
def test_parse_chinese_number(s, value):
    assert parse_chinese_number(s) == value


def q(text):
    return [(x.text, x.value, x.unit, x.kind) for x in extract_quantities(text)]


def test_counts_rates_money_and_indicators():
    text = "全市调解案件39728件,成功率达95.3%,挽回经济损失729万余元。"
    found = extract_quantities(text, offset=100)
    assert [(x.text, x.value, x.unit, x.kind) for x in found] == [
        ("39728件", 39728, "件", "count"),
        ("95.3%", 95.3, "%", "percent"),
        ("729万余元", 7_290_000, "元", "money"),
    ]
    assert found[0].indicator == "全市调解案件"
    assert found[1].indicator == "成功率"
    assert found[2].qualifier == "余"
    assert all(text[x.start - 100 : x.end - 100] == x.text for x in found)


def test_changes_ranks_and_chinese_numerals():
    assert q("受理量同比增长20.2%,较上年下降3个百分点。") == [
        ("同比增长20.2%", 20.2, "%", "change"),
        ("较上年下降3个百分点", -3, "个百分点", "change"),
    ]
    assert q("满意度列全省第四,位居全市前三。") == [
        ("全省第四", 4, "名", "rank"),
        ("全市前三", 3, "名", "rank"),
    ]
    assert q("接待群众三千余人次。")[0][:3] == ("三千余人次", 3000, "人次")


def test_names_and_dates_are_not_quantities():
    assert q("印发《法治政府建设实施纲要(2021-2025年)》,落实“八五”普法规划。") == []
    assert q("2022年3月召开会议,一是加强领导。") == []
    assert q("8个村入选第九批“全国民主法治示范村”。") == [("8个", 8, "个", "count")]


def test_ranks_without_verb_durations_and_spaced_units():
    assert q("成立全省第二家知识产权仲裁中心。") == [("全省第二", 2, "名", "rank")]
    assert q("连续9年送法进招聘会。") == [("9年", 9, "年", "count")]
    assert q("3 家律师事务所到西藏设立分所,8位广州律师援藏。") == [
        ("3 家", 3, "家", "count"),
        ("8位", 8, "位", "count"),
    ]
    assert q("排名全市第3位,位居前列。") == [("全市第3位", 3, "名", "rank")]


def test_editions_and_the_only_one_are_not_quantities():
    # 第四批 / 第十七届 / 十四届七次全会 name an edition; 唯一一个 is "the only one".
    assert q("成为全省唯一一个获评的第四批全国法治宣传教育基地。") == []
    assert q("开展第十七届“农民工学法活动周”。") == []
    assert q("获评第七批全国民主法治示范村。") == []
    assert q("认真落实市委十四届七次全会精神。") == []


def test_arabic_numerals_for_the_model_input():
    from sectioncls.quantities import arabic_numerals

    assert arabic_numerals("三千余人次") == "3000余人次"
    assert arabic_numerals("全省第四") == "全省第4"
    assert arabic_numerals("1.2万 300万元") == "1.2万 300万元"  # digits and multipliers stay


def test_a_number_that_counts_the_names_just_given_is_not_a_quantity():
    # The scheme's list-count: the number only counts the items the sentence names.
    assert q("对市科技局、市商务局、市红十字会等3家单位开展评议。") == []
    assert q("在东湖和西岭两个社区开展试点。") == []
    assert q("打造“法治夜市”“法治书屋”两个品牌。") == []
    # More than the names given, tallies as the items, or occurrences: real counts.
    assert q("在东湖、西岭等12个社区开展试点。") == [("12个", 12, "个", "count")]
    assert q("修改三件、废止两件。") == [("三件", 3, "件", "count"), ("两件", 2, "件", "count")]
    tallies = [("2个", 2, "个", "count"), ("2名", 2, "名", "count")]
    assert q("获评先锋岗2个、岗位标兵2名。") == tallies
    assert q("开展夜间、节假日突击检查不少于2次。") == [("2次", 2, "次", "count")]


def test_frequencies_are_counts_and_one_off_manners_are_not():
    # The scheme: a frequency with a number is a metric; 一次性 is a manner.
    assert q("一个月一次进社区企业举办法治宣传讲座。") == [("一次", 1, "次", "count")]
    assert q("每季度召开两次联席会议。") == [("两次", 2, "次", "count")]
    assert q("全面实行证明材料清单制度和一次性告知制度。") == []
    assert q("定期召开联席会议。") == []
