"""Whisper tiny.en's encoder as a frozen speech representation (see README.md).

Run from the repository root with the study's own venv, e.g.
``OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.probe``.
"""
