"""Benchmarking: the configurations and presets (:mod:`.config`), the cached grid of merges and
scored cells (:mod:`.grid`), the language and vision runners (:mod:`.text`, :mod:`.vision`),
tables (:mod:`.tables`), the results documents (:mod:`.results`), ablation variants
(:mod:`.variants`), the end-to-end workflows of ``tada bench`` / ``tada analyze``
(:mod:`.run`) and the demo (:mod:`.demo`). It sits above the API (it merges through
:func:`tada.api.merge`) and below the CLI; scoring, datasets and statistics stay in
:mod:`tada.eval`, image models in :mod:`tada.vision`."""
