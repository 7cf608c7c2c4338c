"""The shell that runs jobs: the effect interpreter and the async worker."""

from jobkit.worker.interpreter import Performer, Performers, interpret

__all__ = ["Performer", "Performers", "interpret"]
