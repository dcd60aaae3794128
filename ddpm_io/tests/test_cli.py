import os
import signal

from ddpm_io import cli


class SignalledBackend:
    """Receives SIGTERM in the middle of training, as a job scheduler would send it."""

    name = "fake"
    checkpoint_suffix = ".fake"

    def __init__(self):
        self.saw_interrupt = False

    def train(self, *args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:  # what ddpm_io.training.fit catches to save 'latest'
            self.saw_interrupt = True
            raise


def test_sigterm_stops_training_like_ctrl_c(tmp_path, mnist_dir, capsys):
    backend = SignalledBackend()
    before = signal.getsignal(signal.SIGTERM)
    code = cli.main(backend, "ddpm-fake", "fake", ["train", "--dataset", "mnist", "--data-dir",
                                                   str(mnist_dir), "--limit", "32", "--batch-size", "32", "--out",
                                                   str(tmp_path / "run")])
    assert code == 130 and backend.saw_interrupt
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # the handler does not outlive main
