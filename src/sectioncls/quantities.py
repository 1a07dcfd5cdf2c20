"""Extract the quantities a metric unit states: numbers with their units and what they measure.

Analysts want 办理法律援助案件1535件 as (indicator 办理法律援助案件, value 1535, unit 件), with
offsets into the report, and 三千余 / 1.2万 / 同比增长20.2% / 列全省第四 read as numbers. Years,
dates, document titles, hotline numbers and enumerations (一是, 第九批) are names, not
quantities, and are left out.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

__all__ = ["Quantity", "arabic_numerals", "extract_quantities", "parse_chinese_number"]

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_BIG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}


def parse_chinese_number(s: str) -> float | None:
    """三千五百 → 3500, 十二 → 12, 1.2万 → 12000, 3亿 → 3e8; None if it is not a number."""
    s = s.strip()
    if not s:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([万萬亿億]?)", s.replace(",", ""))
    if m:
        return float(m.group(1)) * _CN_BIG.get(m.group(2), 1)
    total, section, digit = 0.0, 0.0, None
    for ch in s:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit = None
        elif ch in _CN_BIG:
            section += digit or 0
            total += section * _CN_BIG[ch]
            section, digit = 0.0, None
        else:
            return None
    return total + section + (digit or 0)


_CN_RUN = re.compile(
    r"(?<![\d.])[零〇一二两兩三四五六七八九十][零〇一二两兩三四五六七八九十百千拾佰仟万萬亿億]*"
)


def arabic_numerals(text: str) -> str:
    """三千余人次 → 3000余人次, 全省第四 → 全省第4: one script for numbers, so that a model
    reading quantities does not learn that Chinese numerals matter less than digits."""

    def repl(m: re.Match[str]) -> str:
        value = parse_chinese_number(m.group())
        return m.group() if value is None else f"{value:g}"

    return _CN_RUN.sub(repl, text)


@dataclass(frozen=True, slots=True)
class Quantity:
    """One quantity; `start`/`end` index the text given to `extract_quantities` (plus offset)."""

    text: str
    start: int
    end: int
    value: float | None
    unit: str
    kind: str  # count | money | percent | change | rank | ratio
    indicator: str
    qualifier: str = ""  # 余 / 多 / 近 / 超 / 以上 …: the number is approximate or a bound

    def to_dict(self) -> dict:
        return asdict(self)


_NUM = r"(?:\d+(?:[.,]\d+)*|[零〇一二两兩三四五六七八九十百千万萬亿億拾佰仟]+)"
_MULT = r"[万萬亿億]?"
_APPROX_BEFORE = r"(?P<pre>近|超过|超|逾|约|达到|达|共计|共|累计|合计|全年|总计)?"
_APPROX_AFTER = r"(?P<post>余|多|以上|以下|左右|多万|余万)?"
_COUNT_UNITS = (
    "人次|件次|批次|场次|户次|个百分点|百分点|平方米|万元|亿元|萬元|億元|元|人|件|宗|个|個|场|場|次|家|"
    "名|项|項|份|条|條|所|部|期|批|篇|堂|座|处|處|支|起|套|户|戶|天|小时|分钟|万人|小時|余人|"
    "位(?![居列于於置])"
)
_QUANTITY = re.compile(
    # (?<!唯): 唯一一个 is "the only one", not a count; [ \u00a0]? lets "3 家" through.
    rf"{_APPROX_BEFORE}(?<!唯)(?P<num>{_NUM}{_MULT}){_APPROX_AFTER}[ \u00a0]?"
    rf"(?P<unit>%|％|‰|{_COUNT_UNITS})"
)
_CHANGE = re.compile(
    r"(?P<dir>同比|环比|较上年|比上年)?(?P<verb>增长|上升|提高|下降|减少|降低|增加)"
    r"(?P<num>\d+(?:\.\d+)?)(?P<unit>%|％|个百分点|倍)"
)
_RANK = re.compile(
    r"(?P<verb>列|居|位居|位列|排名|排|名列|获评|取得|获得|进入|跻身)"
    r"(?P<scope>全国|全省|全市|全区|中心城区|[^\d，,。；;、]{0,6}?)"
    r"(?P<rank>第[一二三四五六七八九十\d]+(?:名|位)?|前[一二三四五六七八九十\d]+(?:名|位)?|首位)"
    # 获评第四批 / 第十七届 / 第二次 are editions of a named thing, not a place in a ranking.
    r"(?![批届屆期次轮輪一二三四五六七八九十\d])"
)
# 全省第二家 / 全国第一个: a rank stated without a verb, bound to a region and a classifier.
_BARE_RANK = re.compile(
    r"(?P<scope>全国|全國|全省|全市|全区|全區)(?P<rank>第[一二三四五六七八九十\d]+)"
    r"(?=家|个|個|位|名)"
)
# 连续9年: a duration stated as a result ("for nine years running").
_RUNNING = re.compile(r"(?P<verb>连续|連續)(?P<num>\d+|[一二两兩三四五六七八九十]+)(?P<unit>年)")
_NOT_QUANTITY_CONTEXT = re.compile(r"第$|[届屆]$|[《“\"]$")  # 第九批, 十三届七次全会, 《…
_YEAR_OR_DATE = re.compile(r"^(?:1[89]|20)\d{2}$")
_INDICATOR_TRIM = re.compile(r"^(?:其中|今年以来|全年|截至目前|目前|共|累计|合计|已|并|先后|分别)+")
_INDICATOR_TAIL = re.compile(r"(?:共计|共|累计|合计|总计|达到|达|为|约|近|超过|超|逾|计|至)+$")
_CLAUSE_BREAK = re.compile(r"[，,；;。！？!?：:、（）()]")


def _kind(unit: str) -> str:
    if unit in ("%", "％", "‰"):
        return "percent"
    if "元" in unit:
        return "money"
    if "百分点" in unit:
        return "change"
    return "count"


def _indicator(text: str, start: int) -> str:
    """What a number measures: its clause up to the number, minus filler."""
    head = text[:start]
    cut = max((m.end() for m in _CLAUSE_BREAK.finditer(head)), default=0)
    clause = head[cut:].strip()
    clause = _INDICATOR_TAIL.sub("", _INDICATOR_TRIM.sub("", clause))
    return clause[-30:]


def extract_quantities(text: str, offset: int = 0) -> list[Quantity]:
    """All quantities in `text` (a unit), ordered by position; offsets are shifted by `offset`."""
    found: list[Quantity] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    protected = _protected_spans(text)

    for m in _CHANGE.finditer(text):
        unit = m.group("unit")
        found.append(
            Quantity(
                text=m.group(),
                start=m.start() + offset,
                end=m.end() + offset,
                value=float(m.group("num"))
                * (-1 if m.group("verb") in ("下降", "减少", "降低") else 1),
                unit=unit,
                kind="change",
                indicator=_indicator(text, m.start()) + (m.group("dir") or ""),
            )
        )
        taken.append(m.span())
    for m in _RANK.finditer(text):
        rank = m.group("rank")
        a = m.start("rank")
        if not free(a, m.end()) or _in(protected, a):
            continue
        digits = re.sub(r"^[第前]|[名位]$", "", rank)
        value = 1.0 if rank == "首位" else parse_chinese_number(digits)
        scope = m.group("scope")
        found.append(
            Quantity(
                text=text[m.start("scope") : m.end()],
                start=m.start("scope") + offset,
                end=m.end() + offset,
                value=value,
                unit="名",
                kind="rank",
                indicator=(_indicator(text, m.start()) + scope).strip(),
                qualifier="前" if rank.startswith("前") else "",
            )
        )
        taken.append((m.start("scope"), m.end()))
    for m in _BARE_RANK.finditer(text):
        if not free(*m.span()) or _in(protected, m.start()):
            continue
        found.append(
            Quantity(
                text=m.group(),
                start=m.start() + offset,
                end=m.end() + offset,
                value=parse_chinese_number(m.group("rank")[1:]),
                unit="名",
                kind="rank",
                indicator=(_indicator(text, m.start()) + m.group("scope")).strip(),
            )
        )
        taken.append(m.span())
    for m in _RUNNING.finditer(text):
        a = m.start("num")
        if not free(a, m.end()) or _in(protected, a):
            continue
        found.append(
            Quantity(
                text=text[a : m.end()],
                start=a + offset,
                end=m.end() + offset,
                value=parse_chinese_number(m.group("num")),
                unit="年",
                kind="count",
                indicator=_following_noun(text, m.end()),
                qualifier="连续",
            )
        )
        taken.append((a, m.end()))
    for m in _QUANTITY.finditer(text):
        a, b = m.start("num"), m.end()
        if not free(a, b) or _in(protected, a):
            continue
        num = m.group("num")
        if _NOT_QUANTITY_CONTEXT.search(text[:a]):
            continue  # 第九批, 《…》
        unit = m.group("unit")
        if unit in ("期", "批", "部") and not num[0].isdigit():
            continue  # 二期, 一批 read as names more often than as counts
        if _YEAR_OR_DATE.match(num) and unit in ("期", "批", "次", "个", "届"):
            continue
        if unit == "次" and text[b : b + 1] == "性":
            continue  # 一次性告知: a manner ("all at once"), not a count of occurrences
        if unit in _LIST_UNITS and _counts_listed_items(text[:a], num):
            continue  # 对A局、B局、C局等3家单位: the number counts the names just given
        if re.fullmatch(r"[一二两三四五六七八九十]", num) and unit in ("个", "項", "项", "条"):
            # "两个维护", "三项制度": small Chinese numerals before 个/项 are usually names;
            # they still count when the sentence is a plain tally (…家, …人).
            continue
        value = parse_chinese_number(num)
        if value is None:
            continue
        post = m.group("post") or ""
        if unit == "余人":
            unit, post = "人", "余"
        indicator = _indicator(text, m.start()) or _following_noun(text, b)
        found.append(
            Quantity(
                text=text[a:b],
                start=a + offset,
                end=b + offset,
                value=value,
                unit=unit,
                kind=_kind(unit),
                indicator=indicator,
                qualifier=(m.group("pre") or "") + post
                if (m.group("pre") or "") in ("近", "超过", "超", "逾", "约")
                else post,
            )
        )
        taken.append((a, b))
    found.sort(key=lambda q: q.start)
    return found


_LIST_CLAUSE_START = re.compile(r"[，,；;。！？!?：:（(]")
_LIST_TAIL = re.compile(r"(?:等等|等|共|计|这|這|上述|在内的)+$")
_JOINERS = re.compile(r"[和与與及]")
# Classifiers that count things which can be named (units, places, documents, brands);
# 次/场/天 count occurrences, which a list before them does not name.
_LIST_UNITS = frozenset("个個家项項所支条條名位座处處部篇件套户戶份")


def _counts_listed_items(before: str, num: str) -> bool:
    """True when the number only counts the items named just before it in the same clause
    (A、B、C三个社区; A、B等2家; “甲”“乙”两个品牌): the annotation scheme calls such a number
    a list-count, not a metric. A larger number (A、B等12个社区) is a real count."""
    value = parse_chinese_number(num)
    if value is None or value < 2 or value > 30:
        return False
    starts = [m.end() for m in _LIST_CLAUSE_START.finditer(before)]
    clause = _LIST_TAIL.sub("", before[starts[-1] if starts else 0 :])
    if not clause or re.search(r"\d", clause) or _QUANTITY.search(clause):
        return False  # 先锋岗2个、标兵2名; 修改三件、废止两件: tallies, not names
    quoted = re.findall(r"“[^”]{1,20}”", clause)
    if clause.endswith("”") and len(quoted) >= 2:
        return value == len(quoted)
    separators = clause.count("、")
    if separators:
        items = separators + 1
        last = clause.rsplit("、", 1)[1]
        return value == items or (value == items + 1 and bool(_JOINERS.search(last)))
    # Two items joined by 和/与/及, each at least two characters (东湖和西岭两个社区).
    parts = _JOINERS.split(clause)
    return value == 2 and len(parts) == 2 and all(len(p) >= 2 for p in parts)


def _following_noun(text: str, end: int) -> str:
    """For "8个村入选…" the counted thing follows the number."""
    m = _CLAUSE_BREAK.search(text, end)
    return text[end : m.start() if m else len(text)][:12].strip()


def _protected_spans(text: str) -> list[tuple[int, int]]:
    """Document titles and quoted names: numbers inside them are names (《…(2022—2025年)》)."""
    return [m.span() for m in re.finditer(r"《[^》]*》|“[^”]{0,20}”", text)]


def _in(spans: list[tuple[int, int]], pos: int) -> bool:
    return any(a <= pos < b for a, b in spans)
