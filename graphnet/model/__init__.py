"""The model: what a trained network is besides its runtime -- its record (preprocessing, class names),
the network users hold (`compiled.CompiledNetwork`), checkpoints, predictions on raw inputs, the
gradient check.
"""
