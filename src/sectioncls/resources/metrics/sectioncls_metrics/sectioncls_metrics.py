"""sectioncls metrics as a local `evaluate` module: category macro-F1 with per-class F1,
metric F1 and expected calibration error, computed the way training and cross-validation do.

Load it by path, never from a hub:

    import evaluate
    from sectioncls.metrics import METRICS_MODULE
    m = evaluate.load(METRICS_MODULE)
    m.compute(predictions=[0, 2], references=[0, 1],
              metric_predictions=[1, 0], metric_references=[1, 0],
              categories=["achievement", "problem", "plan", "other"])

`predictions`/`references` are category indices. The metric columns are optional (metric F1
is left out without them); `probabilities` (one row of category probabilities per unit)
adds ECE. Figures come from `sectioncls.metrics.classification_figures`, the one definition
the project uses everywhere.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted category index per unit.
    references (list of int): gold category index per unit.
    metric_predictions (list of int, optional): predicted metric flag (0/1) per unit.
    metric_references (list of int, optional): gold metric flag (0/1) per unit.
    probabilities (list of list of float, optional): category probabilities per unit (ECE).
    categories (list of str, optional): category names, in index order; default: the four of
        the packaged schema.
    details (bool, optional): return every figure instead (per-class precision, recall, F1 and
        support, the confusion matrix, metric accuracy): what `sectioncls evaluate` reports.
Returns:
    category_macro_f1, category_accuracy, f1_<category> for every category, and, when given
    the inputs for them, metric_f1, metric_precision, metric_recall and category_ece.
"""
_CITATION = ""
_DEFAULT_CATEGORIES = ["achievement", "problem", "plan", "other"]


class SectionclsMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # The unit-level columns; metric flags, probabilities and category names are
            # passed to compute() as keyword arguments.
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        metric_predictions=None,
        metric_references=None,
        probabilities=None,
        categories=None,
        details=False,
    ):
        from sectioncls.metrics import classification_figures

        cats = list(categories or _DEFAULT_CATEGORIES)
        preds = np.asarray(predictions, dtype=int)
        if probabilities is not None:
            p_cat = np.asarray(probabilities, dtype=float)
        else:
            p_cat = np.eye(len(cats))[preds]  # one-hot: no calibration to measure
        has_metric = metric_predictions is not None and metric_references is not None
        m_pred = np.asarray(metric_predictions if has_metric else np.zeros(len(preds)))
        m_ref = np.asarray(metric_references if has_metric else np.zeros(len(preds)))
        figs = classification_figures(cats, references, p_cat, m_ref.astype(int), m_pred)
        if details:  # everything `sectioncls evaluate` reports: per-class, confusion, support
            return figs
        out = {
            "category_macro_f1": figs["category_macro_f1"],
            "category_accuracy": figs["category_accuracy"],
            **{f"f1_{c}": figs["per_class"][c]["f1"] for c in cats},
        }
        if has_metric:
            out.update(
                metric_f1=figs["metric_f1"],
                metric_precision=figs["metric_precision"],
                metric_recall=figs["metric_recall"],
            )
        if probabilities is not None:
            out["category_ece"] = figs["category_ece"]
        return out
