"""The paper's analyses: the per-layer α plots of Fig. 2 (:mod:`.plots`), probe size
(:mod:`.probe_size`) and timing (:mod:`.timing`). They run merges through :mod:`tada.api` and
read reports through :mod:`tada.report`."""
