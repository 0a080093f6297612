"""An example callback: logs each epoch and stops the run at a target accuracy.

Use it from a config (the repository root is on the import path)::

    training:
      epochs: 50
      callbacks:
        - class_path: examples.callbacks:StopAtAccuracy
          params: {target: 0.95}

Every method is optional; see docs/design/callbacks.md for when each is called.
"""

from __future__ import annotations

from typing import Any, Mapping


class StopAtAccuracy:
    """Print a line per epoch; ask the run to stop once ``val_accuracy`` reaches
    ``target``. Its state (the best accuracy seen) resumes with the run."""

    def __init__(self, target: float = 0.95) -> None:
        self.target = target
        self.best = 0.0

    def on_train_start(self, run: Any) -> None:
        # run: run_id, directory and config (read-only)
        print(f"[callback] training {run.run_id} in {run.directory}")

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        accuracy = metrics.get("val_accuracy", 0.0)
        self.best = max(self.best, accuracy)
        print(f"[callback] epoch {epoch}: val_accuracy {accuracy:.4f}")
        return accuracy >= self.target  # True: stop after this epoch

    def on_train_end(self, run: Any, status: str) -> None:
        print(f"[callback] {run.run_id} {status}; best val_accuracy {self.best:.4f}")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = state["best"]
