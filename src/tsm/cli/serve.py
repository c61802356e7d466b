"""``tsm serve --checkpoint CKPT``: live recognition in the browser, many streams sharing one engine;
with ``--teach DIR``, a Teach panel that fine-tunes the model on clips recorded in the page."""

from __future__ import annotations

import argparse

from tsm.cli.engine_options import add_engine_options
from tsm.cli.smoothing_options import add_smoothing_options


def _teach_options(args: argparse.Namespace):
    """The teach project of ``--teach`` and the base model (``--checkpoint``, else the project's)."""
    from tsm.apps.serve.server import LOCAL_HOSTS
    from tsm.apps.teach import TeachLimits, TeachOptions, TeachProject

    if args.host not in LOCAL_HOSTS and args.token is None:
        raise ValueError(
            f"--teach changes the served model and writes files: on --host {args.host} it needs --token "
            "(or serve on 127.0.0.1)"
        )
    limits = TeachLimits(
        max_clip_seconds=args.teach_max_seconds,
        max_clips=args.teach_max_clips,
        max_disk_mb=args.teach_max_disk_mb,
    )
    base = args.checkpoint or TeachProject(args.teach, limits=limits).base
    if base is None:
        raise ValueError(f"{args.teach} records no base model yet: give one with --checkpoint")
    return TeachOptions(args.teach, limits), base


def run(args: argparse.Namespace) -> int:
    try:
        from tsm.apps.serve import ServeSettings, create_app
        from tsm.apps.serve.server import run_server
    except ImportError as error:
        raise ValueError(
            f"tsm serve needs the serve extra ({error.name} is missing): pip install 'tsm[serve]'"
        ) from None
    teach, checkpoint = _teach_options(args) if args.teach else (None, args.checkpoint)
    if checkpoint is None:
        raise ValueError("tsm serve needs --checkpoint (or --teach DIR of a project that records its base)")
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
    options = {"engine": args.engine, "device": args.device, "threads": args.threads}
    app = create_app(checkpoint, settings=settings, teach=teach, precision=args.precision, **options)
    served = app.state.models.current
    how = "frame by frame" if served.kind == "stream" else "on sliding windows"
    print(f"{served.name}: {len(served.class_names)} classes, {how}, engine {served.engine.name}")
    print(f"engine: {served.engine.reason}")
    if served.offline_reason:
        segments = served.engine.num_segments
        every = settings.every or segments
        print(f"offline model: the last {segments} frames, recognised every {every} frames")
    if teach is not None:
        print(f"teach: clips and models in {teach.folder}, fine-tuning {checkpoint}")
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
        help="checkpoint file, published model name, or exported file (tsm export: a --streaming step "
        "runs frame by frame, a clip model on sliding windows; fp32 or int8); with --teach, the online "
        "base model to fine-tune (default: the one the project records)",
    )
    parser.add_argument(
        "--teach",
        metavar="DIR",
        help="teach mode: a Teach panel on the page records clips into the project folder DIR (made when "
        "missing; an existing one is reopened and its last taught model served), fine-tunes the "
        "checkpoint on them and serves the result live (docs/teach.md)",
    )
    parser.add_argument(
        "--teach-max-seconds", type=float, default=10.0, help="teach: longest clip in seconds (default 10)"
    )
    parser.add_argument(
        "--teach-max-clips", type=int, default=300, help="teach: most clips in the project (default 300)"
    )
    parser.add_argument(
        "--teach-max-disk-mb", type=int, default=2000, help="teach: most disk the project uses (default 2000)"
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
