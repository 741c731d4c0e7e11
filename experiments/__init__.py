"""Studies of the product: ablations, probes and one-off measurements (see README.md).

Not packaged and never imported by ``service``, ``trainer`` or ``tests``; run from the
repository root as ``python -m experiments.<study>``. The studies build their variants as
objects (``trainer.recipes.Recipe``, feature set configurations) and register nothing.
"""
