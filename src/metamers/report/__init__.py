"""Figures and tables from what a run wrote."""

from metamers.report.figures import image_grid, null_grid, relu_comparison_figure, transfer_curves, transfer_matrix

__all__ = ["image_grid", "null_grid", "relu_comparison_figure", "transfer_curves", "transfer_matrix"]
