"""A teaching session: one training run at a time in a thread of its own, its progress, its log,
and the handing over of the taught model to whatever serves it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from tsm.apps.teach.features import FeatureCache
from tsm.apps.teach.fitting import (
    FitProgress,
    FitResult,
    LabelledClip,
    RunCancelled,
    estimated_seconds_left,
    fine_tune,
)
from tsm.apps.teach.project import Clip, TeachProject
from tsm.apps.teach.settings import FitSettings
from tsm.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from tsm.data import DataConfig
from tsm.errors import one_line
from tsm.inference import DEFAULT_ENGINE
from tsm.models import Recognizer, check_streamable

# What the first run's time left assumes for handing the model over (exporting it for the engine).
FIRST_EXPORT_GUESS_SECONDS = 10.0

Install = Callable[[Recognizer, CheckpointInfo, str], None]  # model, its info, the run's name


class RunBusy(RuntimeError):
    """A run is going on: one at a time."""


def check_base(model: Recognizer) -> None:
    """Teaching needs a base that streams exactly: a uni-directional (online) model."""
    try:
        check_streamable(model)
    except ValueError as reason:
        raise ValueError(
            f"teaching needs an online (uni-directional) base model, so that the taught model streams "
            f"exactly: {reason}; start from e.g. tsm_online_mobilenet_v2"
        ) from None


class TeachSession:
    """Runs of one project on one base model (``data_config``: the test pipeline it serves with).
    ``engine``, ``threads``: what computes the clips' features (an engine name of the table)."""

    def __init__(
        self,
        project: TeachProject,
        base: Recognizer,
        data_config: DataConfig,
        settings: FitSettings | None = None,
        engine: str = DEFAULT_ENGINE,
        threads: int | None = None,
    ) -> None:
        check_base(base)
        self.project = project
        self.base = base.eval()
        self.data_config = data_config
        self.settings = settings or FitSettings()
        self.cache = FeatureCache(self.base, data_config, self.settings, engine, threads)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._progress: FitProgress | None = None
        self._run: dict[str, Any] = {"state": "idle"}
        self._export_seconds = FIRST_EXPORT_GUESS_SECONDS
        served = project.served_model_path()
        self.served_run = served.stem if served is not None else None
        start = str(served) if served is not None else project.base
        if start is not None:
            project.write_fit_config(self.base.config, data_config, start)

    def prepare_in_background(self) -> None:
        """Ready the network that computes features now, in a thread (the first run of a base
        exports it for the engine, which takes seconds to a minute): while clips are recorded."""

        def prepare() -> None:
            try:
                self.cache.engine()
            except Exception:  # the first run meets the same error, and reports it
                return

        threading.Thread(target=prepare, name="tsm-teach-prepare", daemon=True).start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _training_clips(self) -> tuple[list[LabelledClip], list[str]]:
        clips: list[Clip] = self.project.clips()
        class_names = sorted({clip.label for clip in clips})
        counts = {name: sum(clip.label == name for clip in clips) for name in class_names}
        if len(class_names) < 2:
            raise ValueError("record clips of at least two classes first")
        few = [name for name, count in counts.items() if count < 2]
        if few:
            raise ValueError(f"record at least two clips of {', '.join(few)} first")
        return [LabelledClip(clip.path, class_names.index(clip.label)) for clip in clips], class_names

    def start(self, install: Install) -> str:
        """Start a run on the project's clips now; returns its name. ``install(model, info, run)``
        puts the taught model into service: it is called in the run's thread once the checkpoint
        is written; if it raises, the run failed and what was served stays. Raises
        :class:`RunBusy` while a run goes on, and ValueError when the clips cannot make a model."""
        with self._lock:
            if self.running:
                raise RunBusy("a training run is going on: wait for it to end")
            clips, class_names = self._training_clips()
            run = self.project.new_run_id()
            self._progress = FitProgress(clips_total=len(clips))
            self._run = {"state": "running", "run": run, "classes": class_names, "started": time.time()}
            self._cancel.clear()
            self.project.write_run_log(run, {"run": run, "outcome": "running", "started": _now()})
            arguments = (run, clips, class_names, install)
            self._thread = threading.Thread(
                target=self._run_safely, args=arguments, name=f"tsm-teach-{run}", daemon=True
            )
            self._thread.start()
            return run

    def _run_safely(
        self, run: str, clips: list[LabelledClip], class_names: list[str], install: Install
    ) -> None:
        log: dict[str, Any] = {
            "run": run,
            "started": _now(),
            "base": self.project.base,
            "classes": class_names,
            "clips": {name: sum(c.label == i for c in clips) for i, name in enumerate(class_names)},
            "settings": asdict(self.settings),
        }
        started = time.perf_counter()
        try:
            result = fine_tune(
                self.base, clips, class_names, self.cache, self.settings, self._progress, self._cancel.is_set
            )
            self._progress.phase = "switching"
            export_seconds = self._put_in_service(run, result, install)
        except RunCancelled:
            self._finish(run, {**log, "outcome": "cancelled"}, "failed", "the run was cancelled")
        except Exception as error:  # any failure ends the run, never the server
            message = one_line(error)
            self._finish(run, {**log, "outcome": "failed", "error": message}, "failed", message)
        else:
            summary = _summary(result, export_seconds, time.perf_counter() - started)
            self._went_live(run, {**log, **summary, "outcome": "done"}, summary)
        finally:
            self.cache.forget_others({clip.path for clip in clips})

    def _went_live(self, run: str, log: dict[str, Any], summary: dict[str, Any]) -> None:
        """The run's model is served: the project says so, and its fit config starts from it."""
        self._export_seconds = summary["seconds_serving"]
        self.served_run = run
        self.project.set_served_run(run)
        self.project.write_fit_config(self.base.config, self.data_config, str(self.project.model_path(run)))
        self._finish(run, log, "done", None, summary)

    def _put_in_service(self, run: str, result: FitResult, install: Install) -> float:
        """Write the run's checkpoint, then serve it (as written; a checkpoint that could not be
        served is removed); returns the seconds serving took."""
        path = save_checkpoint(
            self.project.model_path(run), result.model, result.class_names, self.data_config
        )
        try:
            model, info = load_checkpoint(path)
            started = time.perf_counter()
            install(model, info, run)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return time.perf_counter() - started

    def _finish(
        self, run: str, log: dict[str, Any], state: str, error: str | None, summary: dict | None = None
    ) -> None:
        self.project.write_run_log(run, {**log, "finished": _now()})
        seconds = round(time.time() - self._run["started"], 1)
        self._progress.phase = state
        self._run = {**self._run, "state": state, "error": error, "seconds": seconds, **(summary or {})}

    def status(self) -> dict[str, Any]:
        """The current or last run: state ("idle", "running", "done", "failed"), its progress
        (phase, clips done, loss, held-out accuracy, seconds so far and left), and what is served."""
        status = {key: value for key, value in self._run.items() if key != "started"}
        progress = self._progress
        if progress is not None:
            status |= {
                "phase": progress.phase,
                "clips_done": progress.clips_done,
                "clips_total": progress.clips_total,
                "loss": progress.loss,
                "held_out_accuracy": status.get("held_out_accuracy", progress.held_out_accuracy),
            }
        if status["state"] == "running":
            status["seconds"] = round(time.time() - self._run["started"], 1)
            status["seconds_left"] = estimated_seconds_left(progress, self._export_seconds)
        return {**status, "served": self.served_run or "base"}

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the run (if any) to end; its status."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status()

    def close(self, timeout: float = 30.0) -> None:
        """Stop a run at its next clip and wait for it (the server is shutting down)."""
        self._cancel.set()
        self.wait(timeout)


def _summary(result: FitResult, export_seconds: float, total: float) -> dict[str, Any]:
    return {
        "held_out_accuracy": result.held_out_accuracy,
        "held_out_clips": result.held_out_clips,
        "train_clips": result.train_clips,
        "losses": result.losses,
        "skipped": result.skipped,
        "seconds_features": result.feature_seconds,
        "seconds_training": result.train_seconds,
        "seconds_serving": round(export_seconds, 2),
        "seconds_to_live": round(total, 2),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

