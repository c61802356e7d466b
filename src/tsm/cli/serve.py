"""``tsm serve --checkpoint CKPT``: live recognition in the browser, many streams sharing one engine."""

from __future__ import annotations

import argparse

from tsm.cli.engine_options import add_engine_options
from tsm.cli.smoothing_options import add_smoothing_options


def run(args: argparse.Namespace) -> int:
    try:
        from tsm.apps.serve import ServeSettings, create_app
        from tsm.apps.serve.server import run_server
    except ImportError as error:
        raise ValueError(
            f"tsm serve needs the serve extra ({error.name} is missing): pip install 'tsm[serve]'"
        ) from None
    settings = ServeSettings(
        max_streams=args.max_streams,
        max_batch=args.max_batch,
        every=args.every,
        idle_timeout=args.idle_timeout,
        max_frame_bytes=args.max_frame_bytes,
        max_upload_bytes=args.max_upload_mb << 20,
        token=args.token,
        smooth_window=args.smooth_window,
        agree=args.agree,
    )
    app = create_app(
        args.checkpoint,
        engine=args.engine,
        settings=settings,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
    )
    served = app.state.served
    how = "frame by frame" if served.kind == "stream" else "on sliding windows"
    print(f"{served.name}: {len(served.class_names)} classes, {how}, engine {served.engine.name}")
    print(f"engine: {served.engine.reason}")
    if served.offline_reason:
        segments = served.engine.num_segments
        every = settings.every or segments
        print(f"offline model: the last {segments} frames, recognised every {every} frames")
    run_server(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_level=args.log_level,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="live recognition in any browser: a web page, a WebSocket stream protocol, HTTP endpoints",
        description=(
            "Serve a checkpoint to browsers and other clients: the page at / (camera or video file), "
            "frames over the WebSocket /ws/stream, GET /info /healthz /metrics, POST /predict. All "
            "streams share one batched engine. Online (uni-directional) models run frame by frame; "
            "offline ones on the last T frames every --every frames. See docs/serving.md."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint file, published model name, or exported file (tsm export: a --streaming step "
        "runs frame by frame, a clip model on sliding windows; fp32 or int8)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    add_engine_options(parser)
    parser.add_argument("--max-streams", type=int, default=8, help="streams served at once (default 8)")
    parser.add_argument(
        "--max-batch",
        type=int,
        help="most streams per engine call (default: as many as pay, from the engine's measured cost "
        "per frame at each batch size; 1: no batching)",
    )
    parser.add_argument(
        "--every", type=int, help="offline models: recognise every k-th frame (default: T, the clip length)"
    )
    add_smoothing_options(parser)
    parser.add_argument(
        "--idle-timeout", type=float, default=60.0, help="close streams silent this many seconds (default 60)"
    )
    parser.add_argument(
        "--max-frame-bytes", type=int, default=8 << 20, help="largest frame in bytes (default 8 MiB)"
    )
    parser.add_argument(
        "--max-upload-mb", type=int, default=100, help="largest POST /predict video (default 100)"
    )
    parser.add_argument("--token", help="require ?token=TOKEN on the stream, /info, /metrics and /predict")
    parser.add_argument("--ssl-certfile", help="TLS certificate (PEM), with --ssl-keyfile: serve https")
    parser.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    parser.set_defaults(handler=run)
