"""A progress bar for the sampler, driven by "steps done" reports."""

from __future__ import annotations

from tqdm.auto import tqdm


class StepProgress:
    """Called with the number of reverse steps done; shows a tqdm bar of ``total`` steps.

    One object can serve many sampling runs: a report of ``total`` closes the bar and the
    next report opens a new one.
    """

    def __init__(self, total: int, desc: str = "sampling"):
        self.total = total
        self.desc = desc
        self._bar = None

    # Equal by value: JAX keys compiled samplers on static arguments, and a fresh bar
    # object per run must not mean a fresh compilation.
    def __eq__(self, other):
        return type(other) is type(self) and (other.total, other.desc) == (self.total, self.desc)

    def __hash__(self):
        return hash((type(self), self.total, self.desc))

    def __call__(self, done) -> None:
        done = int(done)
        if self._bar is None:
            self._bar = tqdm(total=self.total, desc=self.desc, unit="step", leave=False)
        self._bar.update(max(0, done - self._bar.n))
        if done >= self.total:
            self._bar.close()
            self._bar = None
