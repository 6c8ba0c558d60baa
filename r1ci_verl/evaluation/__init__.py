"""Evaluation: accuracy of a model on the test tasks under the training rules (`r1ci eval`)."""

from r1ci_verl.evaluation.report import PAPER_REFERENCE, SPLIT_NOTE, bar_chart, code_use, compare, markdown, summarize
from r1ci_verl.evaluation.runner import EvalConfig, eval_messages, evaluate, open_store

__all__ = ["PAPER_REFERENCE", "SPLIT_NOTE", "EvalConfig", "bar_chart", "code_use", "compare", "eval_messages",
           "evaluate", "markdown", "open_store", "summarize"]
