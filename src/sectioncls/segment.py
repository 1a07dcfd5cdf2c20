"""Cut a report into units (headings, sentences, enumerated items, page chrome) with offsets.

Chinese official reports have a rigid outline (一、 / (一) / 1. / (1)), run-in headings that
share a line with their first sentence, inline enumerations (一是…；二是…) and web-page chrome.
A general sentence splitter gets all of these wrong, and every later step (annotation, training,
tagging) works on these units, so the rules live here in one place.

Invariant: for every unit, ``text[unit.start:unit.end] == unit.text``; the units are ordered,
never overlap, and everything outside them is whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "KINDS",
    "SECTIONS",
    "Unit",
    "classify_section",
    "outline_marker",
    "segment",
    "top_level",
]

KINDS = ("heading", "sentence", "item", "meta")
SECTIONS = ("achievement", "problem", "plan")


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit of a report; `report[start:end] == text` always holds."""

    index: int
    start: int
    end: int
    text: str
    kind: str
    level: int | None
    heading_path: tuple[str, ...]
    section: str | None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["heading_path"] = list(self.heading_path)
        return d


# --- traditional → simplified, only for the characters our keyword rules look at -------------
_T2S = str.maketrans(
    "問題計劃舉開況進績職創氣優務難關發佈來掃當頁網覽擊數機構號類閱讀備條歸檔鏈"
    "辦單標識碼責編輯瀏訪間鍵縣區鎮書報彙總結點時際處廳辭經濟應實執貫徹顧",
    "问题计划举开况进绩职创气优务难关发布来扫当页网览击数机构号类阅读备条归档链"
    "办单标识码责编辑浏访间键县区镇书报汇总结点时际处厅辞经济应实执贯彻顾",
)


def _simplify(s: str) -> str:
    return s.translate(_T2S)


# --- headings ------------------------------------------------------------------------------
_CN_NUM = "一二三四五六七八九十百零〇"
_HEADING_RULES: tuple[tuple[int, re.Pattern[str]], ...] = (
    (1, re.compile(rf"第[{_CN_NUM}]+(?:部分|章|篇|节|節)[、,，.．:：\s]?")),
    (1, re.compile(rf"第?[{_CN_NUM}]+(?:、|[．.](?!\d))")),
    (2, re.compile(rf"[（(][{_CN_NUM}]+[）)][、．.]?")),
    (3, re.compile(r"\d{1,2}[.．、](?![\d%％])")),
    (4, re.compile(r"[（(]\d{1,2}[）)][、．.]?")),
    (5, re.compile(r"[①-⑳]")),
)
# A numbered line deeper than (一) whose first sentence is this long is a paragraph, not a heading.
_MAX_SUBHEADING_CHARS = 60

# --- sections -----------------------------------------------------------------------------------
# Checked in this order: plan and problem headings are specific; achievement headings are the
# rest of a report's body, phrased as work done or results (取得新进展, 开创新局面, 续写新篇章…).
_SECTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "plan",
        re.compile(
            r"打算|计划|思路|下一步|下步|下阶段|下一阶段|下半年|安排|展望|工作要点|努力方向|工作重点|"
            r"目标任务|部署|设想|改进措施|整改措施|改进举措|意见和建议|意见建议|几点建议|今后|明年|"
            r"新一年|努力方向|预期目标|总体要求|主要任务|重点任务|保障措施"
        ),
    ),
    ("problem", re.compile(r"问题|不足|短板|差距|困难|薄弱|挑战|短处|弱项|反思|瓶颈|矛盾|风险")),
    (
        "achievement",
        re.compile(
            r"开展情况|工作情况|履行|履职|职责情况|举措|成效|成绩|成果|进展|取得|主要工作|"
            r"工作回顾|完成情况|新局面|新篇章|新气象|新优势|新成效|新突破|新进展|新格局|生动局面|"
            r"总结|总体情况|基本情况|落实情况|推进情况|主要做法|回顾|亮点|运行情况"
        ),
    ),
)
# A title that names a plan-only document: every part of it is a plan unless a heading says
# otherwise ("2024年工作要点"; not "2023年工作总结和2024年工作要点", which reviews first).
_PLAN_TITLE = re.compile(r"工作要点|工作计划|工作安排|实施方案|行动方案|任务清单")
_REVIEW_TITLE = re.compile(r"总结|情况|报告|汇报|回顾")


# A heading that reports how something went reviews it, whatever it names: 重点任务落实情况 and
# 工作计划完成情况 are achievements, not plans; 问题整改落实情况 is rectification done. Unless
# it also names what comes next (上半年完成情况和下半年打算 falls through to the rules).
_REVIEW_HEADING = re.compile(
    r"(?:落实|完成|推进|开展|执行|进展|实施|运行|整改|贯彻)情况|工作回顾|情况回顾"
)
_NEXT_WORDS = re.compile(r"下一步|下步|下阶段|下一阶段|下半年|明年|今后|打算|新一年|预期|展望")


def classify_section(heading: str) -> str | None:
    """The report part a top-level heading introduces, from its wording (simplified or not)."""
    s = _simplify(heading)
    if _REVIEW_HEADING.search(s) and not _NEXT_WORDS.search(s):
        return "achievement"
    for section, pattern in _SECTION_RULES:
        if pattern.search(s):
            return section
    return None


def _title_section(title: str) -> str | None:
    s = _simplify(title)
    return "plan" if _PLAN_TITLE.search(s) and not _REVIEW_TITLE.search(s) else None


# --- page chrome and metadata -------------------------------------------------------------------
_META_LINE = re.compile(
    r"^(?:[•·▪◆■●*\-–—>|\[【]\s*)*(?:"
    r"听全文|分享到|相关文章|相关附件|相关新闻|相关链接|相关阅读|扫一扫|打印|关闭|关闭窗口|"
    r"返回顶部|上一篇|下一篇|字号|字体|【\s*字体|【\s*大|来源|信息来源|发布日期|发布时间|发文日期|"
    r"成文日期|索引号|发布机构|发文机关|主题分类|文号|浏览次数|点击数|访问量|责任编辑|编辑|"
    r"政府信息公开|网站地图|联系我们|主办单位|承办单位|网站标识码|版权所有|.{0,20}公网安备|"
    r".{0,20}ICP备|.{0,16}网站$|.{0,16}门户网站$|"
    # page chrome seen on other sites: breadcrumbs, banners, counters, publisher lines
    r"当前位置|您的位置|你的位置|您现在的位置|您当前的位置|所在位置|首页\s*[>＞»›/]|欢迎访问|欢迎来到|welcome|"
    r"发布者|发布人|发布单位|作者[:：]|阅读次数|阅读量|浏览量|访问次数|发文字号|公开方式|公开范围|"
    r"有效性|主题词|【\s*打印|【\s*关闭|【\s*收藏|收藏本页|打印本页|"
    # document wrappers: distribution lines and disclosure notes
    r"抄送[:：]|抄报[:：]|[（(]此件|[（(]本件|[（(]联系人|[（(]责任编辑|"
    r"(?:述职人|汇报人|报告人|撰稿人|审核人|签发人)[:：]"
    r")",
    re.IGNORECASE,
)
_META_MAX_CHARS = 80
# Chrome that can be long: an index/metadata table written as one line, a row of bracketed
# buttons, a document number line (青农发〔2025〕3号), the 印发 line of a notice.
_META_ANYWHERE = re.compile(
    r"(?:索引号|发文字号|发布机构|成文日期).{0,80}(?:索引号|发文字号|发布机构|成文日期|主题分类)"
)
_BUTTONS = re.compile(r"^(?:[【\[][^】\]]{1,10}[】\]][\s　|]*)+$")
_DOC_NUMBER = re.compile(r"^[\u4e00-\u9fff]{1,12}[〔\[［(（]\d{4}[〕\]］)）]\s*\d{1,4}\s*号$")
_PRINTED_LINE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日\s*印发$")
_DATE_LINE = re.compile(
    r"^[\s•·\-–—]*[（(]?\s*(?:"
    r"\d{4}[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?"
    r"|(?:19|20)\d{2}(?:0?[1-9]|1[0-2])(?:[0-2]?\d|3[01])"  # 2024327, 20241227
    r"|[〇零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,2}月[一二三四五六七八九十]{1,3}日"
    r")\s*[）)]?$"
)
# Before the body: the addressee of a report or notice (岚州市人民政府： / 主任、各位委员：).
_ADDRESSEE = re.compile(r"^(?!.*如下)[^。，,！？!?]{2,40}[：:]$")
# Salutations and addressee lines of a speech or notice: 各位代表： / 各乡镇人民政府，县直各单位：
_SALUTATION = re.compile(r"^(?:尊敬的|各位|各)[^。！？!?]{0,70}[：:]$")


def _is_meta_line(line: str) -> bool:
    if not any(ch.isalnum() for ch in line):  # "-", "•", "——" and other leftovers
        return True
    if _DATE_LINE.match(line):
        return True
    s = _simplify(line)
    if _BUTTONS.match(s) or _DOC_NUMBER.match(s) or _PRINTED_LINE.search(s):
        return True
    if len(s) <= 200 and _META_ANYWHERE.search(s):
        return True
    if _SALUTATION.match(s):
        return True
    return len(line) <= _META_MAX_CHARS and bool(_META_LINE.match(s))


# --- sentences ----------------------------------------------------------------------------------
_TERMINATORS = frozenset("。！？!?")
_CLOSERS = frozenset("”’」』）)》】〕\"'")
_PAIRS = {
    "“": "”",
    "‘": "’",
    "「": "」",
    "『": "』",
    "《": "》",
    "（": "）",
    "(": ")",
    "【": "】",
    "〔": "〕",
}
_ENUMERATOR = re.compile(
    rf"\s*(?:[{_CN_NUM}]+是|第[{_CN_NUM}]+[,，、:：是]|其[{_CN_NUM}][,，、:：是]|[①-⑳])"
)
_SPACE = " \t\r\n\f\v\u3000\xa0\ufeff"


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def _protected(line: str) -> list[int]:
    """Nesting depth of quotes/brackets at each position; unmatched openers are ignored."""
    depth = [0] * (len(line) + 1)
    stack: list[tuple[str, int]] = []
    spans: list[tuple[int, int]] = []
    ascii_quote: int | None = None
    for i, ch in enumerate(line):
        if ch in _PAIRS:
            stack.append((_PAIRS[ch], i))
        elif ch == '"':
            if ascii_quote is None:
                ascii_quote = i
            else:
                spans.append((ascii_quote, i))
                ascii_quote = None
        elif stack and ch in _CLOSERS:
            # Close the innermost matching opener; openers above it were unmatched.
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] == ch:
                    spans.append((stack[k][1], i))
                    del stack[k:]
                    break
    diff = [0] * (len(line) + 2)
    for a, b in spans:  # inside means strictly between opener and closer
        diff[a + 1] += 1
        diff[b] -= 1
    running = 0
    for i in range(len(line) + 1):
        running += diff[i]
        depth[i] = running
    return depth


# A bracketed note that closes a line after a sentence (责任单位, 牵头单位, 完成时限 in a
# 工作要点) belongs to that sentence; a line that is only a note (（此件主动公开）) stays apart.
_TRAILING_NOTE = re.compile(r"[ \t\u3000]*[（(][^（）()]{1,60}[）)][。.]?[ \t\u3000]*")


def _sentence_ends(line: str) -> Iterator[int]:
    """Offsets (exclusive) in `line` where a sentence or an enumerated item ends."""
    depth = _protected(line)
    n = len(line)
    i = 0
    while i < n:
        ch = line[i]
        end = -1
        if ch in _TERMINATORS or (ch == "." and _is_ascii_full_stop(line, i)):
            j = i + 1
            while j < n and line[j] in _TERMINATORS:
                j += 1
            # Closing quotes/brackets right after the stop stay with the sentence; that is
            # also the one place a stop inside a quotation ends the sentence.
            closers = j
            while closers < n and (line[closers] in _CLOSERS or line[closers] in _TERMINATORS):
                closers += 1
            if depth[i] == 0 or (closers > j and depth[closers] == 0):
                end = closers
        elif ch in "；;" and depth[i] == 0 and _ENUMERATOR.match(line, i + 1):
            end = i + 1
        elif ch in "：:" and depth[i] == 0 and _ENUMERATOR.match(line, i + 1):
            end = i + 1  # "存在以下问题：一是…" — the lead-in is its own unit
        if end > 0 and _TRAILING_NOTE.fullmatch(line, end):
            end = -1  # "…1次。（责任处室：综合处）": the item's note, not a unit of its own
        if end > 0:
            yield end
            i = end
        else:
            i += 1


def _is_ascii_full_stop(line: str, i: int) -> bool:
    prev = line[i - 1] if i else ""
    nxt = line[i + 1] if i + 1 < len(line) else ""
    if not prev or prev.isdigit() or (prev.isascii() and prev.isalpha()):
        return False
    return (_is_cjk(prev) or prev in _CLOSERS) and (not nxt or nxt in _SPACE or _is_cjk(nxt))


def _spans(line: str, offset: int) -> Iterator[tuple[int, int]]:
    """Trimmed (start, end) spans of the sentences in one line, as absolute offsets."""
    start = 0
    ends = list(_sentence_ends(line))
    if not ends or ends[-1] < len(line):
        ends.append(len(line))
    for end in ends:
        a, b = start, end
        while a < b and line[a] in _SPACE:
            a += 1
        while b > a and line[b - 1] in _SPACE:
            b -= 1
        if b > a:
            yield offset + a, offset + b
        start = end


def top_level(units: Sequence[Unit]) -> int | None:
    """The top outline level in use (the level whose headings name the report's parts)."""
    levels = [u.level for u in units if u.kind == "heading" and u.level]
    return min(levels) if levels else None


def outline_marker(line: str) -> str:
    """The outline number a heading line starts with ("二、", "（三）", "1."), or ""."""
    for _, pattern in _HEADING_RULES:
        m = pattern.match(line)
        if m:
            return m.group(0)
    return ""


def _heading_level(line: str) -> int | None:
    for level, pattern in _HEADING_RULES:
        m = pattern.match(line)
        if m and m.end() < len(line):  # a bare marker is not a heading
            return level
    return None


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-blank line, trimmed; CR, LF and CRLF all end lines."""
    for m in re.finditer(r"[^\r\n]+", text):
        a, b = m.start(), m.end()
        while a < b and text[a] in _SPACE:
            a += 1
        while b > a and text[b - 1] in _SPACE:
            b -= 1
        if b > a:
            yield a, b


def segment(text: str) -> list[Unit]:
    """Segment a report's text into ordered units with exact offsets and heading structure."""
    raw: list[tuple[int, int, str, int | None]] = []  # start, end, kind, level
    seen_heading = False
    seen_body = False  # a title-like line after the first sentence is a signature, not a title
    for a, b in _lines(text):
        line = text[a:b]
        if _is_meta_line(line) or (not seen_body and not seen_heading and _ADDRESSEE.match(line)):
            raw.append((a, b, "meta", None))
            continue
        if seen_body and _SIGNATURE.match(_simplify(line)):  # the issuer's name under the text
            raw.append((a, b, "meta", None))
            continue
        level = _heading_level(line)
        spans = list(_spans(line, a))
        if level is not None:
            h_start, h_end = spans[0]
            if level >= 3 and h_end - h_start > _MAX_SUBHEADING_CHARS:
                raw.append((h_start, h_end, "item", None))
            else:
                raw.append((h_start, h_end, "heading", level))
                seen_heading = True
            spans = spans[1:]
        elif (
            not seen_heading
            and len(spans) == 1
            and _looks_like_title(line)
            and (not seen_body or _DOC_TITLE.search(_simplify(line)))
        ):
            # the title, or the inner title after a notice that wraps the report
            raw.append((a, b, "heading", 0))
            continue
        for s, e in spans:
            kind = "item" if _ENUMERATOR.match(text, s) and not text[s].isspace() else "sentence"
            raw.append((s, e, kind, None))
            seen_body = True
    return _assign_structure(text, raw)


# After the body has started, a title-like line is the inner title of a wrapped report only
# when it names a document; a bare body name is a signature.
_DOC_TITLE = re.compile(r"工作要点|总结|报告|计划|汇报|方案|规划|述职")
_SIGNATURE = re.compile(
    r"^[\u4e00-\u9fff（）()]{2,30}(?:局|委员会|委|政府|办公室|办事处|中心|公司|集团|医院|学院|大学|"
    r"学校|馆|法院|检察院|厅|镇|乡|街道|支队|分局|管委会|居委会|委员会|部)$"
)


def _looks_like_title(line: str) -> bool:
    return (
        len(line) <= 50
        and not any(ch in _TERMINATORS for ch in line)
        and "，" not in line
        and line[-1] not in "：:"
    )


def _assign_structure(text: str, raw: list[tuple[int, int, str, int | None]]) -> list[Unit]:
    """Attach heading paths and sections; sections come from the top outline level in use."""
    levels = [lvl for _, _, kind, lvl in raw if kind == "heading" and lvl]
    top = min(levels) if levels else None
    titles = [text[a:b] for a, b, kind, lvl in raw if kind == "heading" and lvl == 0]
    units: list[Unit] = []
    stack: list[tuple[int, str]] = []
    section: str | None = None
    default_section = _title_section(" ".join(titles))
    for start, end, kind, level in raw:
        if kind == "heading" and level:
            while stack and stack[-1][0] >= level:
                stack.pop()
            if level == top:
                section = classify_section(text[start:end]) or default_section
        path = tuple(t for _, t in stack)
        units.append(
            Unit(
                index=len(units),
                start=start,
                end=end,
                text=text[start:end],
                kind=kind,
                level=level if kind == "heading" else None,
                heading_path=path,
                section=None
                if kind == "meta" or (kind == "heading" and level == 0)
                else (section or default_section),
            )
        )
        if kind == "heading" and level:
            stack.append((level, text[start:end]))
    return units
