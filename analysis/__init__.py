"""Task-dependence analysis of L-SSAT search results (reads Parquet only, never a cluster).

``python -m analysis.report RESULTS_DIR...`` writes the HTML report; the notebooks in this folder
call the same functions: ``analysis.data.load_results`` -> ``analysis.sections`` (tables, figures,
notes) -> ``analysis.answers`` (plain-language answers) -> ``analysis.report.write_report``.
"""
