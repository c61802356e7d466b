// The page's local backend: the model runs in the page itself (tsm.js on ONNX Runtime Web), no
// server behind it. Same interface as the server backend, so the page does not know the
// difference: connect(config, handlers) resolves to {info, send(canvas), reset(), close()}.

import { loadRecognizer } from './tsm.js';

/**
 * config.model: the model folder's URL, relative to the page (page-config.json: "./model/").
 * handlers.onState(state, detail): connecting | connected | error | closed.
 * handlers.onResult({frame, label, score, top, logits, model_ms, latency_ms, dropped}) after every
 * frame (model_ms: preprocessing + model; latency_ms: from send() to the result).
 */
export async function connect(config, handlers) {
  const onState = handlers.onState ?? (() => {});
  const onResult = handlers.onResult ?? (() => {});
  onState('connecting', 'loading the model in the page');
  let recognizer;
  try {
    recognizer = await loadRecognizer(new URL(config.model ?? './model/', document.baseURI), config.options);
  } catch (error) {
    onState('error', error.message);
    throw error;
  }
  let busy = false;
  let closed = false;
  let frame = 0; // frames run since the stream (re)started
  let dropped = 0; // frames skipped because the model was still busy

  async function run(pixels, sent) {
    const started = performance.now();
    try {
      const { logits, top } = await recognizer.step(pixels);
      if (closed) return;
      const [label, score] = top[0];
      const now = performance.now();
      const timing = { model_ms: now - started, latency_ms: now - sent };
      onResult({ frame: frame++, label, score, top, logits: Array.from(logits), ...timing, dropped });
    } catch (error) {
      if (!closed) onState('error', error.message);
    } finally {
      busy = false;
    }
  }

  const backend = {
    info: {
      model: recognizer.info.name,
      classes: recognizer.info.classes,
      numSegments: recognizer.info.numSegments,
      engine: recognizer.info.label,
      resize: recognizer.pipeline.resize, // the short side the test pipeline resizes to
      inputSize: recognizer.pipeline.crop_size[0],
      fullFrames: true, // tsm.js resizes as the test pipeline does (antialiased bilinear): no browser scaling first
    },
    /** Run the canvas's current picture, unless the model is still on the previous one (dropped). */
    send(canvas) {
      if (closed) return;
      if (busy) {
        dropped++;
        return;
      }
      busy = true;
      const sent = performance.now();
      const context = canvas.getContext('2d', { willReadFrequently: true });
      run(context.getImageData(0, 0, canvas.width, canvas.height), sent); // copied now: the canvas moves on
    },
    /** A new stream: the next frame is a first frame. */
    reset() {
      recognizer.reset();
      frame = 0;
      dropped = 0;
    },
    close() {
      closed = true;
      recognizer.close();
      onState('closed', 'stopped');
    },
  };
  onState('connected', recognizer.info.label);
  return backend;
}
