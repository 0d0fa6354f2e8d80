"""The test suite: one folder per package folder (tests/<folder>/test_<module>.py), processes and signals
under tests/system/, helpers in tests._support."""
