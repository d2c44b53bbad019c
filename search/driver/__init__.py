"""``python -m search.run``: the command line parsed once into one frozen plan
(:class:`search.driver.plan.Plan`), the dry run, and the search session that carries it out.

May import every ``search`` package below it (stages, execution, optimize, results); never
the replay, the demo or ``analysis``.
"""
