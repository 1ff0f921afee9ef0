"""VisionFit helpers: the session (``api``), the sampler (``sampling``) and analysis plots (``vis``, [analysis])."""
