"""The Ray side: starting or joining Ray, cluster capacity and trial resources, ASHA, the
trainable (and Ray Train for multi-worker trials), the Recorder callback and wait warnings.

Imports ``search.optimize``, ``search.results`` and ``lssat``; never the stages, the driver,
the replay or ``analysis``.
"""
