"""Stage 7: report figures and tables over every stage's outputs."""
