"""`crnn-jax serve`: an HTTP recognition service with dynamic batching, and a web page.

An optional extra (`pip install -e '.[serve]'`: Starlette, uvicorn, prometheus_client,
python-multipart). The modules:

  batcher.py   `DynamicBatcher`: images of concurrent requests gathered into one model call,
               bounded by a maximum batch, a maximum wait and a bounded queue (no web code);
  service.py   `Service`: the served models and their decoders, uploads checked and
               preprocessed as `predict` reads files, batches through
               `Recognizer.recognize_preprocessed`, the warm-up that compiles every batch shape;
  metrics.py   the Prometheus metrics;
  app.py       the Starlette routes (`create_app`) and the uvicorn server (`run_server`);
  page.html    the web page at `/` (inline HTML, CSS and JavaScript: nothing from a CDN).

The command itself is `crnn_jax/cli/serve.py`. This package imports neither JAX training code
(`crnn_jax.train_lib`) nor, until a command runs, the web libraries from `crnn_jax.cli`.
"""
