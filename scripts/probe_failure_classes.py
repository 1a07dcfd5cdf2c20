"""Probe a model on the six kinds of text that broke the first model on unseen real reports,
and on numbers that are names (the metric head's false alarms on the real folds).

The probe reports below were written for this script (not taken from any report, and not in
any training set); each unit that the probe checks carries the label a reader gives it. It
is a smoke test of the failure classes, not a benchmark: 7 short texts, a few dozen units.
Run: .venv/bin/python scripts/probe_failure_classes.py [--model checkpoints/sectioncls-default]
"""

from __future__ import annotations

import argparse
import sys

from sectioncls import ReportTagger

# (failure class, report text, {unit text: expected category})
PROBES: list[tuple[str, str, dict[str, str]]] = [
    (
        "1 headings no keyword list knows; a plan-only document",
        "石泉县商务局2025年重点工作安排\n一、总体考虑\n"
        "围绕扩内需、稳外贸两条主线，推动商贸流通提质增效。\n二、预期指标\n"
        "社会消费品零售总额增长6.5%左右。\n外贸进出口总额突破45亿元。\n"
        "三、主攻方向\n（一）做强县域商业体系。\n新建乡镇商贸中心4个。\n",
        {
            "一、总体考虑": "plan",
            "围绕扩内需、稳外贸两条主线，推动商贸流通提质增效。": "plan",
            "社会消费品零售总额增长6.5%左右。": "plan",
            "外贸进出口总额突破45亿元。": "plan",
            "（一）做强县域商业体系。": "plan",
            "新建乡镇商贸中心4个。": "plan",
        },
    ),
    (
        "2 an opening summary of results before the first heading",
        "临江区司法局2024年度工作总结\n"
        "2024年，区司法局被评为全省司法行政系统先进集体，区公共法律服务中心挂牌运行，"
        "“枫桥式”司法所创建经验入选全市改革典型案例。\n"
        "一、聚焦主责主业\n全年办理法律援助案件612件。\n",
        {
            "2024年，区司法局被评为全省司法行政系统先进集体，区公共法律服务中心挂牌运行，"
            "“枫桥式”司法所创建经验入选全市改革典型案例。": "achievement",
            "全年办理法律援助案件612件。": "achievement",
        },
    ),
    (
        "3 measures under a problem heading; short problem items",
        "某镇2024年工作总结\n一、年度工作开展情况\n完成道路硬化12公里。\n"
        "二、需要加以改进的地方\n一是基础设施历史欠账较多。\n二是产业带动能力偏弱。\n"
        "针对以上问题，我们将从三个方面着力：一是加快补齐设施短板；二是培育壮大特色产业。\n",
        {
            "一是基础设施历史欠账较多。": "problem",
            "二是产业带动能力偏弱。": "problem",
            "一是加快补齐设施短板；": "plan",
            "二是培育壮大特色产业。": "plan",
        },
    ),
    (
        "4 problems inside a review",
        "某市人民政府工作报告\n一、2024年工作回顾\n全市地区生产总值增长5.8%。\n"
        "同时，我们也认识到，经济回升的基础还不牢固，部分企业经营比较困难。\n"
        "大气环境质量改善成效仍不稳固。\n二、2025年主要任务\n持续扩大有效投资。\n",
        {
            "同时，我们也认识到，经济回升的基础还不牢固，部分企业经营比较困难。": "problem",
            "大气环境质量改善成效仍不稳固。": "problem",
            "持续扩大有效投资。": "plan",
        },
    ),
    (
        "5 forecasts either way",
        "某县水务局2025年上半年工作总结\n一、上半年工作进展\n完成管网改造8.6公里。\n"
        "预计年底农村自来水普及率能达到98%。\n"
        "受资金影响，预计水库除险加固项目年内难以完工。\n",
        {
            "预计年底农村自来水普及率能达到98%。": "plan",
            "受资金影响，预计水库除险加固项目年内难以完工。": "problem",
        },
    ),
    (
        "6 wrappers and page chrome",
        "您当前的位置：首页 > 政务公开 > 计划总结\n某县卫生健康局2024年工作总结\n"
        "发布时间：2025-01-08  来源：本站  浏览量：236\n"
        "一、主要成绩\n全县新建村卫生室11所。\n【打印】【关闭】\n",
        {
            "您当前的位置：首页 > 政务公开 > 计划总结": "other",
            "发布时间：2025-01-08  来源：本站  浏览量：236": "other",
            "全县新建村卫生室11所。": "achievement",
            "【打印】【关闭】": "other",
        },
    ),
]


# (probe, report text, {unit text: expected metric}): numbers that are names, dates, hotlines,
# ordinals or counts of the items listed (no) beside genuine quantities and targets (yes).
METRIC_PROBES: list[tuple[str, str, dict[str, bool]]] = [
    (
        "7 numbers that are names beside quantities",
        "柳河县人力资源和社会保障局2024年工作总结\n一、年度工作成效\n"
        "深入推进“15分钟就业服务圈”建设，打造“零工驿站”“家门口就业”两个服务品牌。\n"
        "全年城镇新增就业4326人，城镇登记失业率控制在3.1%以内。\n"
        "认真落实“三个区分开来”要求，严格执行《劳动保障监察条例》。\n"
        "开通12333人社服务热线夜间专席，实现政策咨询“一线通答”。\n"
        "围绕“1+3+X”技能培训体系，开展补贴性职业技能培训2860人次。\n"
        "县人社局第四次获评全市人社系统综合考核先进单位。\n"
        "全县14个乡镇全部建成劳动保障服务站。\n"
        "二、下一步打算\n"
        "贯彻落实党的二十届三中全会精神，推进“十五五”人社事业规划编制。\n"
        "力争全年新增城镇就业4500人以上。\n",
        {
            "深入推进“15分钟就业服务圈”建设，打造“零工驿站”“家门口就业”两个服务品牌。": False,
            "全年城镇新增就业4326人，城镇登记失业率控制在3.1%以内。": True,
            "认真落实“三个区分开来”要求，严格执行《劳动保障监察条例》。": False,
            "开通12333人社服务热线夜间专席，实现政策咨询“一线通答”。": False,
            "围绕“1+3+X”技能培训体系，开展补贴性职业技能培训2860人次。": True,
            "县人社局第四次获评全市人社系统综合考核先进单位。": False,
            "全县14个乡镇全部建成劳动保障服务站。": True,
            "贯彻落实党的二十届三中全会精神，推进“十五五”人社事业规划编制。": False,
            "力争全年新增城镇就业4500人以上。": True,
        },
    ),
]


def score(tagger, probes, label, show, header: str, noun: str) -> bool:
    """Print one table: each probe's units, `label(unit)` against the expected value, the
    wrong ones shown with `show`; False when the segmenter did not cut a probed unit."""
    total = right = 0
    print(f"{header}\n|---|---|---|---|")
    for name, text, expected in probes:
        got = {u.text: label(u) for u in tagger.tag(text).units}
        missing = [t for t in expected if t not in got]
        if missing:
            print(f"probe {name!r}: the segmenter did not cut {missing}", file=sys.stderr)
            return False
        wrong = [f"{t[:14]}… ({show(got[t])})" for t, want in expected.items() if got[t] != want]
        n = len(expected)
        total += n
        right += n - len(wrong)
        print(f"| {name} | {n} | {n - len(wrong)} | {'; '.join(wrong)} |")
    print(f"\n{right}/{total} {noun} right")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="checkpoints/sectioncls-default")
    args = ap.parse_args()
    tagger = ReportTagger.from_pretrained(args.model)
    ok = score(
        tagger,
        PROBES,
        lambda u: u.category,
        str,
        "| failure class | units | right | wrong (predicted) |",
        "probe units",
    )
    print()
    ok = ok and score(
        tagger,
        METRIC_PROBES,
        lambda u: u.metric,
        lambda m: "yes" if m else "no",
        "| metric probe | units | right | wrong (predicted metric) |",
        "metric probe units",
    )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
