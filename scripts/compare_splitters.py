"""Compare the sectioncls segmenter with general-purpose splitters on the hard cases.

Each case is a small text with its units cut by hand. A splitter scores a case when it returns
exactly those units (whitespace trimmed); boundary precision/recall/F1 is pooled over all cases.
Run: .venv/bin/python scripts/compare_splitters.py
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pysbd

from sectioncls.segment import segment

# (category, text, expected units)
CASES: list[tuple[str, str, list[str]]] = [
    (
        "run-in heading",
        "(一)改革创新仍有短板。对全面依法治市的总结提炼不多。",
        ["(一)改革创新仍有短板。", "对全面依法治市的总结提炼不多。"],
    ),
    (
        "run-in heading",
        "二、存在问题\n(二)基层基础建设偏慢。仍有部分司法所无独立业务用房。",
        ["二、存在问题", "(二)基层基础建设偏慢。", "仍有部分司法所无独立业务用房。"],
    ),
    (
        "heading without stop",
        "一、2022年工作开展情况\n(一)聚焦法治护航,推进全面依法治市\n认真履行职责。",
        ["一、2022年工作开展情况", "(一)聚焦法治护航,推进全面依法治市", "认真履行职责。"],
    ),
    (
        "enumerated items ；",
        "存在以下问题:一是机制不健全;二是力量不足;三是保障不够。",
        ["存在以下问题:", "一是机制不健全;", "二是力量不足;", "三是保障不够。"],
    ),
    (
        "enumerated items ；",
        "第一,加强领导；第二,完善制度；第三,强化保障。",
        ["第一,加强领导；", "第二,完善制度；", "第三,强化保障。"],
    ),
    (
        "； inside an item",
        "一是完善制度,规范流程;加强监督。二是强化保障。",
        ["一是完善制度,规范流程;加强监督。", "二是强化保障。"],
    ),
    (
        "quotes and book titles",
        "印发《关于加强工作的意见。试行》,全面推进。",
        ["印发《关于加强工作的意见。试行》,全面推进。"],
    ),
    (
        "quotes and book titles",
        "秉持“法治是最好的营商环境。再出发”理念,优化服务。下一步继续。",
        ["秉持“法治是最好的营商环境。再出发”理念,优化服务。", "下一步继续。"],
    ),
    (
        "brackets",
        "推动司法所业务用房新建、改建(扩建。含装修),成效明显。",
        ["推动司法所业务用房新建、改建(扩建。含装修),成效明显。"],
    ),
    (
        "closing quote after stop",
        "他强调:“法治是最好的营商环境。”我们坚持这一理念。",
        ["他强调:“法治是最好的营商环境。”", "我们坚持这一理念。"],
    ),
    (
        "decimals and list numbers",
        "成功率达95.3%,金额3.5亿元。1.2万人次参与。",
        ["成功率达95.3%,金额3.5亿元。", "1.2万人次参与。"],
    ),
    (
        "decimals and list numbers",
        "1.完善制度\n2.强化保障\n全年办理案件12.5万件。",
        ["1.完善制度", "2.强化保障", "全年办理案件12.5万件。"],
    ),
    (
        "ellipsis",
        "开展调解、普法、援助……各项工作稳步推进。下一句。",
        ["开展调解、普法、援助……各项工作稳步推进。", "下一句。"],
    ),
    (
        "page chrome",
        "2022年工作总结\n  • 听全文\n  • 2023-06-16\n  • 分享到\n全年工作成效明显。",
        ["2022年工作总结", "• 听全文", "• 2023-06-16", "• 分享到", "全年工作成效明显。"],
    ),
    (
        "page chrome",
        "全年工作成效明显。\n相关文章\n扫一扫在手机打开当前页",
        ["全年工作成效明显。", "相关文章", "扫一扫在手机打开当前页"],
    ),
    (
        "ASCII punctuation",
        "完成任务!还有不足?继续努力.下一步加强。",
        ["完成任务!", "还有不足?", "继续努力.", "下一步加强。"],
    ),
    (
        "CRLF and indentation",
        "一、工作情况\r\n\u3000\u3000全年办理案件12件。\r\n    二、存在问题\r\n  力量不足。",
        ["一、工作情况", "全年办理案件12件。", "二、存在问题", "力量不足。"],
    ),
    (
        "traditional script",
        "三、存在不足\n一是法治統籌協調職能作用有待完善。二是執法質量有待提升;涉及改革的制度建設還需完善。",
        [
            "三、存在不足",
            "一是法治統籌協調職能作用有待完善。",
            "二是執法質量有待提升;涉及改革的制度建設還需完善。",
        ],
    ),
]


def spans_of(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Locate trimmed pieces in order, so every splitter is scored on offsets."""
    out, pos = [], 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        i = text.find(piece, pos)
        if i < 0:
            continue
        out.append((i, i + len(piece)))
        pos = i + len(piece)
    return out


def split_sectioncls(text: str) -> list[tuple[int, int]]:
    return [(u.start, u.end) for u in segment(text)]


_PYSBD = pysbd.Segmenter(language="zh", clean=False)


def split_pysbd(text: str) -> list[tuple[int, int]]:
    pieces = []
    for line in text.splitlines():  # pysbd treats text as prose; give it lines at least
        pieces.extend(_PYSBD.segment(line))
    return spans_of(text, pieces)


_NAIVE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+[”’」』]*|\n|$)")


def split_regex(text: str) -> list[tuple[int, int]]:
    return spans_of(text, [m.group() for m in _NAIVE.finditer(text)])


SPLITTERS = {"sectioncls": split_sectioncls, "pysbd (zh)": split_pysbd, "regex 。！？": split_regex}


def main() -> None:
    exact = defaultdict(lambda: defaultdict(list))
    tp = defaultdict(int)
    n_pred = defaultdict(int)
    n_gold = 0
    for category, text, expected in CASES:
        gold = spans_of(text, expected)
        assert len(gold) == len(expected), f"bad case: {expected}"
        gold_ends = {e for _, e in gold}
        n_gold += len(gold_ends)
        for name, fn in SPLITTERS.items():
            got = fn(text)
            exact[category][name].append(got == gold)
            ends = {e for _, e in got}
            tp[name] += len(ends & gold_ends)
            n_pred[name] += len(ends)

    names = list(SPLITTERS)
    print(f"{'hard case':<28}" + "".join(f"{n:>14}" for n in names))
    for category, by_name in exact.items():
        row = f"{category:<28}"
        for n in names:
            ok = by_name[n]
            row += f"{sum(ok):>10}/{len(ok):<3}"
        print(row)
    total = f"{'all cases exact':<28}"
    for n in names:
        ok = [x for c in exact.values() for x in c[n]]
        total += f"{sum(ok) / len(ok):>14.0%}"
    print(total)
    f1_row = f"{'boundary F1':<28}"
    for n in names:
        p = tp[n] / max(n_pred[n], 1)
        r = tp[n] / n_gold
        f1_row += f"{2 * p * r / max(p + r, 1e-9):>14.3f}"
    print(f1_row)

    reports = sorted((Path(__file__).resolve().parents[1] / "examples" / "reports").glob("*.txt"))
    texts = [p.read_text("utf-8") for p in reports]
    speed = f"{'speed, 4 reports (ms)':<28}"
    for n in names:
        t0 = time.perf_counter()
        for _ in range(3):
            for t in texts:
                SPLITTERS[n](t)
        speed += f"{(time.perf_counter() - t0) / 3 * 1000:>14.1f}"
    print(speed)


if __name__ == "__main__":
    main()
