"""Run folders: what a run folder holds and who may write it (`folder`, `lock`).
"""
