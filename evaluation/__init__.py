"""Evaluation of served models: metrics, operating thresholds, reports, A/B gating and speed.

Run it as ``hazardscan eval --model MODEL --data DATA``; see :mod:`evaluation.cli`. matplotlib and
pycocotools are evaluation-only dependencies; the serving path never imports this package.
"""
