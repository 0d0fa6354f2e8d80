"""graphnet's version (pyproject.toml gives the same), for what records it: `graphnet --version`,
the producer of an exported ONNX model."""
__version__ = "0.1.0"
