"""A progress bar for the sampler, driven by "steps done" reports."""

from __future__ import annotations

from tqdm.auto import tqdm


class StepProgress:
    """Called with the number of reverse steps done; shows a tqdm bar of ``total`` steps.

    One object can serve many sampling runs: a report of ``total`` closes the bar and the
    next report opens a new one. (JAX compiles the sampler once per distinct object, so
    reusing it avoids recompiling.)
    """

    def __init__(self, total: int, desc: str = "sampling"):
        self.total = total
        self.desc = desc
        self._bar = None

    def __call__(self, done) -> None:
        done = int(done)
        if self._bar is None:
            self._bar = tqdm(total=self.total, desc=self.desc, unit="step", leave=False)
        self._bar.update(max(0, done - self._bar.n))
        if done >= self.total:
            self._bar.close()
            self._bar = None
