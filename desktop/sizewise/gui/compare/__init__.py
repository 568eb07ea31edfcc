"""The Compare page: several models, quants or settings on the same prompt, the runner that drives them and the
engines (kept loaded between runs) they run on. Planning, results and the report are Qt-free, in core/compare/."""
