"""Results to verdicts, figures, plots and the HTML report; compare for CI.

Reads only the results model and the leaves: never the scenarios, the stack or the apps.
"""
