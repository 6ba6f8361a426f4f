"""The service's Prometheus metrics (`GET /metrics`), in a registry of their own.

  crnn_serve_requests_total{route, method, status}   requests answered
  crnn_serve_requests_in_flight                      requests received and not yet answered
  crnn_serve_request_duration_seconds{route}         latency histogram
  crnn_serve_batch_size                              images per model call (histogram)
  crnn_serve_batch_duration_seconds                  seconds per model call and decoding
  crnn_serve_images_total{model, decoder}            images read
  crnn_serve_queue_depth                             images waiting for the model now
  crnn_serve_ready                                   1 once warmed up (and not shutting down)

Routes are labelled by their path for the service's own routes and 'other' for anything else,
so that unknown paths cannot grow the label set.
"""

from __future__ import annotations

from typing import Hashable

import prometheus_client

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


class Metrics:
  """The metrics of one service (each app gets its own registry)."""

  def __init__(self, registry: prometheus_client.CollectorRegistry | None = None):
    self.registry = registry or prometheus_client.CollectorRegistry()
    kwargs = {"registry": self.registry}
    self.requests = prometheus_client.Counter(
        "crnn_serve_requests", "HTTP requests answered, by route, method and status",
        ["route", "method", "status"], **kwargs)
    self.in_flight = prometheus_client.Gauge(
        "crnn_serve_requests_in_flight", "HTTP requests received and not yet answered",
        **kwargs)
    self.latency = prometheus_client.Histogram(
        "crnn_serve_request_duration_seconds", "Seconds from request to response, by route",
        ["route"], buckets=LATENCY_BUCKETS, **kwargs)
    self.batch_size = prometheus_client.Histogram(
        "crnn_serve_batch_size", "Images per model call (dynamic batching)",
        buckets=BATCH_BUCKETS, **kwargs)
    self.batch_seconds = prometheus_client.Histogram(
        "crnn_serve_batch_duration_seconds", "Seconds per model call, decoding included",
        buckets=LATENCY_BUCKETS, **kwargs)
    self.images = prometheus_client.Counter(
        "crnn_serve_images", "Images read, by model and decoder", ["model", "decoder"], **kwargs)
    self.queue_depth = prometheus_client.Gauge(
        "crnn_serve_queue_depth", "Images waiting for the model", **kwargs)
    self.ready = prometheus_client.Gauge(
        "crnn_serve_ready", "1 once the warm-up has compiled, 0 before and while shutting down",
        **kwargs)

  def bind(self, service) -> None:
    """Reads the queue depth and readiness from `service` at each scrape, and observes its
    batches."""
    self.queue_depth.set_function(lambda: service.batcher.depth)
    self.ready.set_function(lambda: 1.0 if service.ready else 0.0)
    service.batch_listeners.append(self.on_batch)

  def on_batch(self, key: Hashable, size: int, seconds: float) -> None:
    del key  # Batches are counted over all models.
    self.batch_size.observe(size)
    self.batch_seconds.observe(seconds)

  def render(self) -> bytes:
    """The Prometheus text exposition of every metric."""
    return prometheus_client.generate_latest(self.registry)
