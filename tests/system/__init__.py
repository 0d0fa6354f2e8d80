"""Tests that start processes (graphnet, python, mpiexec), send signals or kill, mirroring the package
inside (tests/system/<folder>/test_<module>.py): `pytest tests/system` runs them, `pytest
--ignore=tests/system` leaves them out. And the tests of graphnet.system, which are of that kind."""
