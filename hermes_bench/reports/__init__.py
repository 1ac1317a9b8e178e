"""Results to verdicts, figures and the HTML report."""
