"""How graphnet meets the operating system: atomic files (`fileio`), stdout that may close (`console`),
stop signals and exit codes (`interrupts`), the memory limit (`limits`). Every layer may use them.
"""
