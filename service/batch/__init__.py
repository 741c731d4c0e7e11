"""``ser-batch``: score archives of recordings on Ray, with the service's decoding, features,
model and answers.

The pieces, one concern each: :mod:`service.batch.inputs` lists what to score (files, folders,
CSV manifests, filesystem URIs), :mod:`service.batch.rows` turns one recording's answer or error
into output rows, :mod:`service.batch.scorer` is the per-actor worker (one onnxruntime session),
:mod:`service.batch.job` runs it on Ray Data, :mod:`service.batch.output` writes Parquet, CSV
or JSON Lines and tells which inputs a previous run already finished, and
:mod:`service.batch.cli` is the command.

``ray`` is imported only when a job runs (inside :mod:`service.batch.job`'s functions), and
``pyarrow`` only by this package: both come with the ``batch`` extra, which the service and
its image never install nor import.
"""
