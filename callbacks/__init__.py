"""Lightning callbacks (installed as ``rzero_pl.callbacks``).

``benchmark_eval.BenchmarkEvaluation`` scores the solver before and after a single fit. The
challenger's reward terms are not callbacks: the challenger holds them and calls them with
explicit arguments (``rzero_pl.rewards``).
"""
