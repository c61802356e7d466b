/**
 * The `tsm serve` backend of the page (see app.js for the interface): frames go as JPEG over the
 * WebSocket `ws/stream`, one at a time, and each JSON reply comes back as a result. The protocol
 * is described in docs/serving.md. URLs are relative to the page, so the app may be mounted under
 * a prefix; a `?token=` in the page's address is passed on.
 */

const JPEG_QUALITY = 0.85;

export function withToken(path) {
  const url = new URL(path, window.location.href);
  const token = new URLSearchParams(window.location.search).get('token');
  if (token) url.searchParams.set('token', token);
  return url;
}

async function fetchInfo() {
  const response = await fetch(withToken('info'));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ?? `GET info answered ${response.status}`);
  return toInfo(body);
}

/** The backend's `info` from the server's /info (or a `switched` message, which carries it). */
function toInfo(body) {
  return {
    model: body.model,
    classes: body.classes,
    numSegments: body.num_segments,
    engine: body.precision && body.precision !== 'fp32' ? `${body.engine} ${body.precision}` : body.engine,
    inputSize: body.input_size,
    resize: body.resize,
    kind: body.kind,
  };
}

export async function connect(config, handlers) {
  handlers.onState('connecting');
  const info = await fetchInfo();
  const url = withToken('ws/stream');
  url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('logits', '1');
  const socket = new WebSocket(url);
  let busy = false;  // a frame is being encoded or awaits its reply
  let sentAt = 0;
  let opened = false;

  socket.addEventListener('open', () => {
    opened = true;
    handlers.onState('connected');
  });
  socket.addEventListener('message', (event) => {
    const reply = JSON.parse(event.data);
    if (reply.switched) {  // the server serves another model now; this stream starts afresh on it
      backend.info = toInfo(reply.switched);
      handlers.onSwitch?.(backend.info);
      return;
    }
    busy = false;
    if (reply.error) {
      console.warn('tsm serve:', reply.error);
    } else if (!reply.reset) {
      handlers.onResult({ ...reply, latency_ms: performance.now() - sentAt });
    }
  });
  socket.addEventListener('close', (event) => {
    if (event.code === 1013) handlers.onState('full', event.reason || 'try again later');
    else if (!opened) handlers.onState('error', 'cannot open the stream');
    else if (event.code === 1000 || event.code === 1001) handlers.onState('closed', event.reason);
    else handlers.onState(event.code === 1008 ? 'error' : 'closed', event.reason || `code ${event.code}`);
  });

  const backend = {
    info,
    send(canvas) {
      if (busy || socket.readyState !== WebSocket.OPEN) return false;
      busy = true;
      canvas.toBlob((blob) => {
        if (!blob || socket.readyState !== WebSocket.OPEN) {
          busy = false;
          return;
        }
        sentAt = performance.now();
        socket.send(blob);
      }, 'image/jpeg', JPEG_QUALITY);
      return true;
    },
    reset() {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ reset: true }));
    },
    close() {
      socket.close(1000, 'page closed');
    },
  };
  return backend;
}
