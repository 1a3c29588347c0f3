"""Evaluation of the models: ``make evaluate``'s report, the realism measures, the judge, training's validation.

Modules: ``report`` (the ``evaluate`` command), ``sections`` and ``terrain`` (its per-area parts), ``scores``,
``metrics``, ``realism``, ``two_sample``, ``judge``, ``windows``, ``rasters`` (files and the plugin's job),
``plots``, ``summary``, ``quick`` (cheap measures of a training run), ``validation`` (during training).
"""
