"""The labelling view as an annotator meets it: a real Label Studio server, a real headless
Chromium (Debian's, driven by Playwright), log in, "Label All Tasks", read, press, submit.

What is checked is what annotators tripped on: the queue serves the least confident unit first;
the unit, its context (（无） for an empty field), the document header and the Chinese labels
with their hotkeys are on the page; the model's suggestion is visible as the model's, with its
confidence, and is not the annotator's answer; pressing the suggested category's hotkey and
Submit stores an annotation that `sectioncls` reads back with that category.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sectioncls.data import load_dataset
from sectioncls.schema import LabelSchema
from sectioncls.studio.client import StudioClient

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCHEMA = LabelSchema.default()
REPORT = (
    "岚溪县统计局2024年工作总结\n"
    "一、主要工作\n"
    "全年完成各类统计调查任务42项。\n"
    "基层统计人员业务能力仍有差距。\n"
    "二、下一步打算\n"
    "将推进统计数据共享平台建设。\n"
)
# Fixed suggestions: unit 3 is the least confident, so the queue must serve it first.
SUGGESTED = {
    0: ("other", 0.97),
    1: ("achievement", 0.99),
    2: ("achievement", 0.93),
    3: ("problem", 0.58),
    4: ("plan", 0.99),
    5: ("plan", 0.95),
}


class FixedPredictor:
    """A predictor with known answers (the tagger's own path is tested elsewhere)."""

    model_version = "fixed-1"
    categories: ClassVar[list[str]] = list(SCHEMA.categories)

    def predict_units(self, units) -> list[dict[str, Any]]:
        out = []
        for u in units:
            cat, p = SUGGESTED[u.index]
            rest = (1 - p) / (len(self.categories) - 1)
            scores = {c: (p if c == cat else rest) for c in self.categories}
            metric = "42项" in u.text
            out.append(
                {"category": cat, "scores": scores, "metric": metric, "metric_score": 0.99 * metric}
            )
        return out


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = []
    if sync_playwright is None:
        missing.append("the playwright package")
    if CHROMIUM is None:
        missing.append("Debian's chromium")
    if missing:
        reason = f"needs {' and '.join(missing)} (make test installs them)"
        if os.environ.get("SECTIONCLS_REQUIRE_STUDIO", "").strip() not in ("", "0", "false"):
            pytest.fail(f"{reason}; SECTIONCLS_REQUIRE_STUDIO is set")
        pytest.skip(reason)
    return sync_playwright


def _choices(page) -> list[tuple[str, bool]]:
    """Every choice on the page in order: (its text with the hotkey mark, checked)."""
    return page.eval_on_selector_all(
        "label.lsf-choice__checkbox",
        "els => els.map(e => [e.innerText.trim(), !!e.querySelector('input:checked')])",
    )


def test_annotator_confirms_the_suggestion_with_its_hotkey(studio_server, studio_login, tmp_path):
    sync_playwright = _playwright()
    client = StudioClient(studio_server.url, studio_server.token)
    res = client.push([("lanxi_tongji_2024", REPORT)], "browser check", FixedPredictor())
    pid = res.project_id
    project = client.ls.projects.get(pid)
    assert project.sampling == "Uncertainty sampling" and project.show_instruction
    assert "如何标注" in project.expert_instruction and "不算" in project.expert_instruction

    email, password = studio_login
    shot = Path(os.environ.get("SECTIONCLS_SCREENSHOTS") or tmp_path) / "labelling-view.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
            page.goto(f"{studio_server.url}/user/login/")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            # "Label All Tasks" from the Data Manager
            page.goto(f"{studio_server.url}/projects/{pid}/data?labeling=1")
            page.wait_for_selector("label.lsf-choice__checkbox", timeout=60_000)
            # the project's instructions open first (the guidelines, in Chinese)
            guide = page.get_by_text("如何标注")
            guide.wait_for(timeout=10_000)
            assert "不算" in page.inner_text("body")
            page.keyboard.press("Escape")
            guide.wait_for(state="hidden", timeout=10_000)
            page.screenshot(path=str(shot), full_page=True)
            body = page.inner_text("body")

            # the least confident unit is served first, with its document and place
            assert "基层统计人员业务能力仍有差距。" in body
            assert "岚溪县统计局2024年工作总结 · 第 4/6 个单元" in body
            assert "一、主要工作" in body and "全年完成各类统计调查任务42项。" in body
            assert "模型建议" in body and "本单元（请标注）" in body

            choices = _choices(page)
            texts = [t for t, _ in choices]
            # the annotator's Chinese labels, each with its hotkey, and nothing else to press
            assert texts == [f"{c.name_zh}[{c.hotkey}]" for c in SCHEMA.category_specs] + [
                f"{SCHEMA.metric.name_zh}[{SCHEMA.metric.hotkey}]"
            ]
            # the model's suggestion is shown as the model's, with its confidence; the
            # annotator's category starts empty
            assert "问题/不足（按 2）· 含量化指标：否 · 把握 0.58" in body
            assert not any(checked for _, checked in choices)
            submit = page.locator("button:has-text('Submit'), button:has-text('提交')").first
            # submitting without a choice is refused, in the annotators' language
            submit.click()
            page.get_by_text("请先选择一个类别").first.wait_for(timeout=10_000)
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)
            page.screenshot(path=str(shot.with_name("labelling-view-required.png")))

            # confirm the suggestion with its hotkey, then submit
            page.keyboard.press(SCHEMA.category("problem").hotkey)
            page.wait_for_timeout(300)
            on = [checked for _, checked in _choices(page)][: len(SCHEMA.categories)]
            checked = [c for c, yes in zip(SCHEMA.categories, on, strict=True) if yes]
            assert checked == ["problem"]
            assert submit.is_enabled()
            submit.click()
            page.wait_for_timeout(1500)
        finally:
            browser.close()

    tasks = {t["data"]["unit_index"]: t for t in client.tasks(pid, with_annotations=True)}
    anns = tasks[3]["annotations"]
    assert len(anns) == 1
    by_name = {r["from_name"]: r for r in anns[0]["result"]}
    assert by_name["category"]["value"]["choices"] == ["problem"]
    assert by_name["category"].get("origin") != "prediction"  # the person's answer
    assert "model_suggestion" not in by_name or by_name["model_suggestion"].get("origin")
    # what sectioncls reads back from the export: the annotator's category, not the model's
    export = client.pull("browser check", tmp_path / "export.json").path
    ds, _ = load_dataset([str(export)], SCHEMA)
    rows = list(ds["train"])
    assert [(r["unit_index"], r["category"]) for r in rows] == [(3, SCHEMA.category2id["problem"])]
