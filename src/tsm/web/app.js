/**
 * tsm live: the page shows a camera or a video file, sends its frames to a recognition backend and
 * shows the smoothed label, the top-5 classes, frames per second and latency.
 *
 * Which backend runs the model comes from `page-config.json`, served next to this page:
 *   {"backend": "server", "smoothWindow": 12, "agree": 2}   (tsm serve; "teach": true adds the
 *                                                            Teach panel of teach.js: tsm serve --teach)
 *   {"backend": "local", "model": "./model/", "smoothWindow": 12, "agree": 2} (a page that runs the model itself)
 * and is loaded as `./server-backend.js` or `./local-backend.js`. A backend module exports
 *
 *   connect(config, handlers) -> Promise<backend>
 *     config: page-config.json as an object
 *     handlers.onResult(result): one per recognised frame,
 *       result = {frame, label, score, top: [[name, probability], ...], logits?, model_ms,
 *                 latency_ms, dropped, fresh?}
 *       (`logits`: all classes, needed for smoothing; `fresh: false`: no new recognition for
 *       this frame, the latest one repeated; `label: null`: nothing recognised yet)
 *     handlers.onState(state, detail): state is "connecting" | "connected" | "full" | "error" | "closed"
 *     handlers.onSwitch(info): the backend now runs another model (backend.info is its info); the
 *       stream starts afresh on it (tsm serve --teach, when a training run is done)
 *   backend.info  = {model, classes, numSegments, engine, inputSize?, resize?, fullFrames?}
 *     (`fullFrames: true`: the backend applies the test pipeline itself and gets each frame at its
 *     own size, so that its resize is the pipeline's; otherwise the page scales frames down to the
 *     pipeline's resize first, which is less to encode and send)
 *   backend.send(canvas)  non-blocking: encodes or queues the frame as it needs, drops it when busy
 *   backend.reset()       start the stream afresh (the model's memory of past frames is cleared)
 *   backend.close()
 *
 * Label smoothing runs here, for every backend alike: LabelSmoother below has the semantics of
 * tsm's LabelSmoother (`tsm stream --smooth-window W --agree A`).
 */

/** The shown label: argmax of the sum of the last `window` logits, changed only when the last
 * `agree` candidates are the same (the first result after a reset shows its candidate). */
export class LabelSmoother {
  constructor(window = 1, agree = 1) {
    for (const [name, value] of [['window', window], ['agree', agree]]) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`smoothing ${name} must be a positive integer`);
    }
    this.window = window;
    this.agree = agree;
    this.reset();
  }

  reset() {
    this.rows = [];        // the last `window` logits
    this.candidates = [];  // the last `agree` candidates
    this.label = -1;
  }

  /** Add one frame's logits (array of K numbers); return the shown label's index. */
  update(logits) {
    this.rows.push(Float64Array.from(logits));
    if (this.rows.length > this.window) this.rows.shift();
    const sums = new Float64Array(logits.length);
    for (const row of this.rows) row.forEach((value, k) => { sums[k] += value; });
    let candidate = 0;
    sums.forEach((value, k) => { if (value > sums[candidate]) candidate = k; });
    this.candidates.push(candidate);
    if (this.candidates.length > this.agree) this.candidates.shift();
    const agreed = this.candidates.length === this.agree && this.candidates.every((c) => c === candidate);
    if (agreed || this.label < 0) this.label = candidate;
    return this.label;
  }
}

const $ = (id) => document.getElementById(id);
const STATE_WORDS = {
  connecting: 'Connecting…',
  connected: 'Connected',
  full: 'Server full',
  error: 'Error',
  closed: 'Disconnected',
};

/** A stat's value, with its unit in small type ('–' when there is none yet). */
function showNumber(id, value, unit = '') {
  const element = $(id);
  if (value === null) {
    element.textContent = '–';
    return;
  }
  element.textContent = `${value}`;
  if (unit) {
    const small = document.createElement('span');
    small.className = 'unit';
    small.textContent = unit;
    element.append(small);
  }
}

function softmax(logits) {
  const top = Math.max(...logits);
  const exps = logits.map((value) => Math.exp(value - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((value) => value / total);
}

/** Rates and latencies over the last few seconds, for the stats. */
class Meter {
  constructor(seconds = 2) {
    this.seconds = seconds;
    this.times = [];
    this.latencies = [];
  }

  add(latencyMs) {
    const now = performance.now();
    this.times.push(now);
    while (this.times.length && now - this.times[0] > this.seconds * 1000) this.times.shift();
    if (Number.isFinite(latencyMs)) this.latencies.push(latencyMs);
    if (this.latencies.length > 30) this.latencies.shift();
  }

  fps() {
    if (this.times.length < 2) return null;
    return (this.times.length - 1) / ((this.times.at(-1) - this.times[0]) / 1000);
  }

  latency() {
    if (!this.latencies.length) return null;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  reset() { this.times = []; this.latencies = []; }
}

class Page {
  constructor(config, backendModule) {
    this.config = config;
    this.backendModule = backendModule;
    this.smoother = new LabelSmoother(config.smoothWindow ?? 1, config.agree ?? 1);
    this.meter = new Meter();
    this.backend = null;
    this.classes = [];
    this.video = $('video');
    this.canvas = document.createElement('canvas');
    this.objectUrl = null;
    this.cameraStream = null;
  }

  setState(state, detail) {
    document.body.dataset.state = state;
    this.live = state === 'connecting' || state === 'connected';
    $('reset-button').textContent = this.live ? 'Reset' : 'Reconnect';
    const words = STATE_WORDS[state] ?? state;
    const said = (detail ?? '').replace(/^server full:\s*/i, '');
    $('state-text').textContent = said ? `${words}: ${said}` : words;
    if (state !== 'connecting' && state !== 'connected') this.showLabel(null, said || words);
  }

  showInfo(info) {
    this.classes = info.classes;
    $('model-info').textContent =
      `${info.model} · ${info.classes.length} classes · ${info.numSegments} frames per clip · engine ${info.engine}`;
    $('smoothing').textContent = `${this.smoother.window} / ${this.smoother.agree}`;
  }

  /** The server switched the model (a teach run is done): new classes, smoothing from scratch. */
  onSwitch(info) {
    this.smoother.reset();
    this.showInfo(info);
    this.showLabel(null, `now serving ${info.model}`);
    $('top').replaceChildren();
  }

  onResult(result) {
    this.meter.add(result.latency_ms);
    $('frame').textContent = result.frame;
    $('dropped').textContent = result.dropped ?? 0;
    if (Number.isFinite(result.model_ms)) showNumber('model-ms', result.model_ms.toFixed(1), 'ms');
    const fps = this.meter.fps();
    const latency = this.meter.latency();
    showNumber('fps', fps === null ? null : fps.toFixed(1));
    showNumber('latency', latency === null ? null : Math.round(latency), 'ms');
    if (result.label === null) {
      this.showLabel(null, 'collecting frames for the first clip');
      return;
    }
    let shown = result.label;
    let probabilities = null;
    if (result.logits) {
      probabilities = softmax(result.logits);
      const index = result.fresh === false ? this.smoother.label : this.smoother.update(result.logits);
      shown = this.classes[index] ?? result.label;
    }
    const index = this.classes.indexOf(shown);
    const score = probabilities && index >= 0 ? probabilities[index] : result.score;
    this.showLabel(shown, `${(100 * score).toFixed(0)} % this frame`);
    this.showTop(result.top);
  }

  showLabel(label, detail) {
    const element = $('label');
    element.textContent = label ?? '–';
    element.classList.toggle('pending', label === null);
    $('score').textContent = detail;
  }

  showTop(top) {
    const list = $('top');
    list.replaceChildren(...top.map(([name, probability]) => {
      const item = document.createElement('li');
      const percent = (100 * probability).toFixed(1);
      item.innerHTML = '<span class="name"></span><span class="value"></span><div class="track"><div class="fill"></div></div>';
      item.querySelector('.name').textContent = name;
      item.querySelector('.value').textContent = `${percent} %`;
      item.querySelector('.fill').style.width = `${percent}%`;
      return item;
    }));
  }

  /** Open the backend (again, after a close): a new stream, starting afresh. */
  async connect() {
    const connection = (this.connections = (this.connections ?? 0) + 1);
    const current = () => connection === this.connections;  // an older backend's events are ignored
    this.backend?.close();
    this.backend = null;
    this.smoother.reset();
    this.meter.reset();
    try {
      this.backend = await this.backendModule.connect(this.config, {
        onResult: (result) => current() && this.onResult(result),
        onState: (state, detail) => current() && this.setState(state, detail),
        onSwitch: (info) => current() && this.onSwitch(info),
      });
    } catch (error) {
      this.setState('error', error.message);
      return;
    }
    this.showInfo(this.backend.info);
  }

  reset() {
    if (!this.live) {
      this.connect();
      return;
    }
    this.smoother.reset();
    this.meter.reset();
    this.backend?.reset();
    this.showLabel(null, 'reset: starting afresh');
    $('top').replaceChildren();
    for (const id of ['fps', 'latency', 'frame']) $(id).textContent = '–';
  }

  async useCamera() {
    try {
      this.cameraStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      $('placeholder').textContent = `No camera (${error.name}): choose a video file`;
      return;
    }
    this.stopFile();
    this.video.srcObject = this.cameraStream;
    this.video.loop = false;
    $('preview').classList.add('mirrored');  // a mirror, as people expect of themselves
    $('source-tag').textContent = 'camera · mirrored';
    await this.play();
  }

  async useFile(file) {
    this.stopCamera();
    this.stopFile();
    this.objectUrl = URL.createObjectURL(file);
    this.video.srcObject = null;
    this.video.src = this.objectUrl;
    this.video.loop = true;
    $('preview').classList.remove('mirrored');
    $('source-tag').textContent = file.name;
    this.reset();
    await this.play();
  }

  async play() {
    $('placeholder').textContent = '';
    try {
      await this.video.play();
    } catch (error) {
      $('placeholder').textContent = `Cannot play: ${error.message}`;
    }
  }

  stopCamera() {
    this.cameraStream?.getTracks().forEach((track) => track.stop());
    this.cameraStream = null;
  }

  stopFile() {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  /** Draw the current video frame: at its own size for a backend that resizes as the test pipeline
   * does (fullFrames), else at the size the pipeline resizes it to (short side = its resize, long
   * side rounded down as PyTorch does), so that the server's resize has nothing left to do. */
  grab() {
    const { videoWidth: width, videoHeight: height } = this.video;
    if (!width || !height || this.video.readyState < 2) return null;
    const info = this.backend.info;
    const target = info.fullFrames ? Infinity : info.resize || info.inputSize || 256;
    const short = Math.min(width, height);
    const size = (side) => (side === short ? target : Math.floor((target * side) / short));
    const scaled = target < short;  // frames smaller than the resize are sent as they are
    this.canvas.width = scaled ? size(width) : width;
    this.canvas.height = scaled ? size(height) : height;
    this.canvas.getContext('2d').drawImage(this.video, 0, 0, this.canvas.width, this.canvas.height);
    return this.canvas;
  }

  /** Send each new video frame once (requestVideoFrameCallback): the model's memory of past
   * frames then spans the camera's time, not repeats of one frame at the display's rate. A browser
   * without it gets every animation frame. A frame that comes while the backend is busy is dropped. */
  loop() {
    const perFrame = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
    const next = (tick) => (perFrame ? this.video.requestVideoFrameCallback(tick) : requestAnimationFrame(tick));
    const tick = () => {
      if (this.backend && !this.video.paused) {
        const canvas = this.grab();
        if (canvas) this.backend.send(canvas);
      }
      next(tick);
    };
    next(tick);
  }
}

async function main() {
  const response = await fetch('page-config.json');
  const config = await response.json();
  const module = await import(config.backend === 'local' ? './local-backend.js' : './server-backend.js');
  const page = new Page(config, module);
  window.tsmPage = page;
  page.setState('connecting');
  $('reset-button').addEventListener('click', () => page.reset());
  $('camera-button').addEventListener('click', () => page.useCamera());
  $('file-input').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) page.useFile(file);
  });
  await page.connect();
  page.loop();
  await page.useCamera();
  if (config.teach) {
    const { TeachPanel } = await import('./teach.js');
    window.tsmTeach = new TeachPanel(page);
    await window.tsmTeach.start();
  }
}

if (document.getElementById('video')) main();
