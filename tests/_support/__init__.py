"""Helpers the tests import (`from tests._support.zoo import ...`) and scripts they run as child processes."""
