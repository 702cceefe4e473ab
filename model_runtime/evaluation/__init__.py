"""Evaluation of generators (`i2fet evaluate`): metrics, an independent FER2013 emotion judge, a separately trained
text <-> expression retrieval evaluator, and the side-by-side report. See report.py for what is measured."""

from .report import DEFAULT_MODELS, SPLITS, EvaluationReport, run_evaluation

__all__ = ["DEFAULT_MODELS", "SPLITS", "EvaluationReport", "run_evaluation"]
