"""Prometheus metrics of one app, in a registry of its own (several apps may share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency buckets (seconds) from 2 ms to 4 s: a CPU step of a small model to a slow clip model.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.067, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 4.0)


class ServeMetrics:
    """Open streams, frames, dropped and bad frames, batch sizes, and where a frame's time goes:
    decoding, waiting for the engine, the engine call, arrival to reply."""

    def __init__(self, max_streams: int) -> None:
        self.registry = CollectorRegistry()
        self.open_streams = Gauge("tsm_serve_open_streams", "WebSocket streams open", registry=self.registry)
        self.frames = Counter("tsm_serve_frames", "frames recognised", registry=self.registry)
        self.dropped = Counter(
            "tsm_serve_dropped_frames",
            "frames replaced by a newer one before the model took them",
            registry=self.registry,
        )
        self.bad_messages = Counter(
            "tsm_serve_bad_messages", "messages answered with an error", registry=self.registry
        )
        self.step_seconds = Histogram(
            "tsm_serve_step_seconds",
            "time of one batched engine call",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decode_seconds = Histogram(
            "tsm_serve_decode_seconds",
            "decoding and preprocessing one frame (beside the engine, on the decoding thread)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "tsm_serve_queue_seconds",
            "from a frame's arrival to the start of the engine call that takes it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.frame_seconds = Histogram(
            "tsm_serve_frame_seconds",
            "from a frame's arrival to its reply being ready",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        batch_buckets = sorted({1, 2, 4, 8, 16, 32, 64, max_streams})
        self.batch_size = Histogram(
            "tsm_serve_batch_size", "streams per engine call", buckets=batch_buckets, registry=self.registry
        )

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
