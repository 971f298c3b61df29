"""Figures and tables from what a run wrote."""

from metamers.report.figures import null_grid, relu_comparison_figure, transfer_curves, transfer_matrix

__all__ = ["null_grid", "relu_comparison_figure", "transfer_curves", "transfer_matrix"]
