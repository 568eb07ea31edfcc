"""Calibration as a job process, for the GUI: the same run as ``sizewise calibrate``, with progress and Cancel.

Why a job process and not a thread: calibration drives an engine worker and the quantizer (each a process of
its own) for about a minute, and the only clean way to stop it mid-step is the path Ctrl+C takes on the CLI —
a ``KeyboardInterrupt`` in calibration's main thread, which stops the running bench or quantize, deletes the
synthetic models in its ``finally`` and stores nothing. In a job process that is a signal handler away:
cancel sends SIGTERM, the handler raises ``KeyboardInterrupt``, and the job is given time to clean up before
it would be killed. A job killed anyway (or one whose app died) leaves a scratch folder named after its
process, which the next calibration deletes (core/speed/scratch.py).

The profile is stored by the child only after calibration returned, so a cancelled or failed run stores
nothing and the previous profile (if any) stays in use.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from sizewise.core.paths import AppPaths
from sizewise.engine.protocol import Message
from sizewise.engine.quant.job import JobError, JobProcess

# Stopping a bench, shutting the engine worker down and deleting a few hundred MB of synthetic models take a
# few seconds; only past this is the job killed (and its folder left for the next calibration to delete).
CANCEL_GRACE_S = 20.0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def calibrate_in_child(payload: dict[str, Any], emit: Callable[[Message], None]) -> dict[str, Any]:
    """Child side: calibrate, store the profile, return it as a dict (``finished``)."""
    from sizewise.core.speed.fit import FitError
    from sizewise.core.speed.profile import ProfileStore
    from sizewise.engine.session import EngineError
    from sizewise.engine.speed.calibrate import calibrate
    from sizewise.engine.speed.measure import CalibrationFailed

    signal.signal(signal.SIGTERM, _interrupt)
    # The parent starts jobs as daemons (it ends them when it exits, via SIGTERM: here a clean cancel), and
    # multiprocessing refuses children to a daemon; calibration's engine worker and quantizer are its children.
    multiprocessing.current_process().daemon = False
    paths = AppPaths(
        config_dir=Path(payload["config_dir"]),
        data_dir=Path(payload["data_dir"]),
        cache_dir=Path(payload["cache_dir"]),
        log_dir=Path(payload["log_dir"]),
        hf_home=None,
    )

    def progress(line: str) -> None:
        emit({"type": "progress", "message": line})

    try:
        done = calibrate(paths, Path(payload["template"]), progress)
    except KeyboardInterrupt:  # cancelled: calibration has cleaned up; end without a traceback in the log
        raise SystemExit(130) from None
    except (CalibrationFailed, EngineError, FitError) as exc:
        raise JobError(f"Calibration failed, nothing was stored: {exc}") from exc
    store = ProfileStore.for_app(paths)
    for profile in done.profiles:
        store.put(profile)
    gpu = done.gpu.to_dict() if done.gpu is not None else None
    return {"result": done.profile.to_dict(), "gpu": gpu, "models": len(done.measured)}


class CalibrationJob:
    """Parent side of one calibration. ``on_event`` gets ``progress`` events (``message``), then one final
    event: ``finished`` (``result``: the stored profile as a dict), ``failed``/``died`` (``message``) or
    ``cancelled``. Nothing here blocks the caller, cancel included."""

    def __init__(self, paths: AppPaths, template: Path, on_event: Callable[[Message], None]) -> None:
        payload = {
            "config_dir": str(paths.config_dir),
            "data_dir": str(paths.data_dir),
            "cache_dir": str(paths.cache_dir),
            "log_dir": str(paths.log_dir),
            "template": str(template),
        }
        self.job = JobProcess(
            "sizewise.engine.speed.calibrate_job",
            "calibrate_in_child",
            payload,
            on_event,
            name="sizewise-calibrate",
            log_path=str(paths.log_dir / "calibrate.log"),
            terminate_grace_s=CANCEL_GRACE_S,
        )

    @property
    def pid(self) -> int | None:
        return self.job.pid

    def start(self) -> None:
        self.job.start()

    def cancel(self) -> None:
        """Ask the job to stop and clean up; waiting for it happens off the caller's thread."""
        threading.Thread(target=self.job.cancel, name="sizewise-calibrate-cancel", daemon=True).start()

    def wait(self, timeout: float | None = None) -> Message | None:
        return self.job.wait(timeout)
