"""Perturbed copies of a report keep their gold labels on the units that are still there."""

from __future__ import annotations

import pytest

from sectioncls.perturb import HELD_OUT_HEADINGS, PERTURBATIONS, perturb_report

REPORT = """某局2024年工作总结
一、主要工作情况
（一）强化执法。全年办结案件12件。
（二）优化服务。新增窗口3个。
二、存在问题
基层力量仍然不足。
三、2025年工作打算
力争办结率达到98%以上。
"""
GOLD = ["other", "achievement", "achievement", "achievement", "achievement", "achievement",
        "problem", "problem", "plan", "plan"]  # fmt: skip


def test_reworded_headings_keep_markers_and_labels():
    p = perturb_report(REPORT, GOLD, "reworded headings")
    tops = [u.text for u in p.units if u.kind == "heading" and u.level == 1]
    assert tops == [
        "一、" + HELD_OUT_HEADINGS["achievement"][0],
        "二、" + HELD_OUT_HEADINGS["problem"][0],
        "三、" + HELD_OUT_HEADINGS["plan"][0],
    ]
    assert [GOLD[i] for i in p.source_index] == GOLD


def test_headings_removed_keeps_the_title_and_every_sentence():
    p = perturb_report(REPORT, GOLD, "headings removed")
    assert not [u for u in p.units if u.kind == "heading" and u.level]
    assert p.units[0].text == "某局2024年工作总结"
    assert all(i is not None for i in p.source_index)
    assert "基层力量仍然不足。" in [u.text for u in p.units]


def test_opening_alone_and_problem_part_moved():
    assert [u.text for u in perturb_report(REPORT, GOLD, "opening alone").units] == [
        "某局2024年工作总结"
    ]
    moved = perturb_report(REPORT, GOLD, "problem part inside achievement part")
    texts = [u.text for u in moved.units]
    assert "二、存在问题" not in texts
    assert texts.index("基层力量仍然不足。") < texts.index("（二）优化服务。")
    assert GOLD[moved.source_index[texts.index("基层力量仍然不足。")]] == "problem"


def test_unknown_perturbation_and_label_count_are_errors():
    with pytest.raises(ValueError, match="choose from"):
        perturb_report(REPORT, GOLD, "shuffled")
    with pytest.raises(ValueError, match="labels for"):
        perturb_report(REPORT, GOLD[:3], "opening alone")
    assert set(PERTURBATIONS) >= {"reworded headings", "headings removed"}
