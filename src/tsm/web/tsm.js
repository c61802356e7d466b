// tsm.js: online TSM recognition in the browser, one frame at a time, on the user's device.
//
//   import { loadRecognizer } from './tsm.js';
//   const recognizer = await loadRecognizer('./model/');        // a folder of tsm export --format web
//   const { logits, top } = await recognizer.step(imageData);   // ImageData or VideoFrame
//   recognizer.reset();                                          // a new stream
//
// Each frame goes through the checkpoint's test pipeline (short side resized with PyTorch's
// antialiased bilinear filter, centre crop, normalisation), then through one step of the
// streaming ONNX model, whose caches carry the shifted channels to the next frame. ONNX Runtime
// Web runs it on WebGPU where the browser has an adapter, else on WebAssembly (SIMD, and threads
// when the page is cross-origin isolated). Everything is loaded from this module's folder.

const ORT_FOLDER = new URL('./ort/', import.meta.url).href;
const BUILDS = { wasm: 'ort.wasm.min.mjs', webgpu: 'ort.webgpu.min.mjs' };
const PIPELINE_FORMAT = 'tsm-frame-pipeline';
const PIPELINE_VERSION = 2; // the newest pipeline.json this tsm.js reads (tsm.data.PIPELINE_VERSION)
const SCHEMA_URL = new URL('./pipeline.schema.json', import.meta.url).href;
const MODEL_FILES = 'pipeline.json, classes.json and the ONNX file';
const TOP_K = 5;

/** A model folder that is missing, incomplete or broken. */
export class ModelFolderError extends Error {
  constructor(message) {
    super(`tsm.js: ${message}`);
    this.name = 'ModelFolderError';
  }
}

// ---- ONNX Runtime Web: one module per build, one inference at a time ----------------------

const runtimes = new Map(); // build name -> Promise<ort module>
let inferenceChain = Promise.resolve();

function runtimeFor(engine, threads) {
  if (!runtimes.has(engine)) {
    const loading = import(ORT_FOLDER + BUILDS[engine]).then((ort) => {
      ort.env.wasm.wasmPaths = ORT_FOLDER; // never a CDN
      ort.env.wasm.numThreads = threads;
      return ort;
    });
    runtimes.set(engine, loading);
  }
  return runtimes.get(engine);
}

/** Run session.run calls one after another: ONNX Runtime Web runs one inference at a time. */
function exclusive(task) {
  const run = inferenceChain.then(task);
  inferenceChain = run.catch(() => {});
  return run;
}

function defaultThreads() {
  if (!globalThis.crossOriginIsolated) return 1; // no SharedArrayBuffer: one thread
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

async function hasWebGpu() {
  if (!globalThis.navigator?.gpu) return false;
  try {
    return (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

// ---- The model folder -------------------------------------------------------------------------

async function fetchFile(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ModelFolderError(`cannot fetch ${what} (${url}): ${error.message}`);
  }
  if (!response.ok) {
    throw new ModelFolderError(
      `${what} is missing: ${url} answered HTTP ${response.status}. A model folder holds ` +
        `${MODEL_FILES}, as tsm export CKPT --format web --out DIR writes them in DIR/model/`,
    );
  }
  return response;
}

async function fetchJson(url, what) {
  const text = await (await fetchFile(url, what)).text();
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ModelFolderError(`${what} (${url}) is not valid JSON (${error.message}); export the folder again`);
  }
}

/**
 * The JSON Schema rules pipeline.schema.json uses (type, const, enum, required, properties, items,
 * minItems, maxItems, minimum, exclusiveMinimum, minLength): the first violation as text, or null.
 */
function schemaViolation(value, schema, where = 'pipeline') {
  const types = [].concat(schema.type ?? []);
  const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
  const fits = (t) => typeOf(value) === t || (t === 'number' && typeOf(value) === 'integer');
  if (types.length && !types.some(fits)) return `${where} must be ${types.join(' or ')}, got ${JSON.stringify(value)}`;
  if ('const' in schema && value !== schema.const) return `${where} must be ${JSON.stringify(schema.const)}`;
  if (schema.enum && !schema.enum.includes(value)) return `${where} must be one of ${JSON.stringify(schema.enum)}`;
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return `${where} must be >= ${schema.minimum}`;
    if (schema.exclusiveMinimum !== undefined && !(value > schema.exclusiveMinimum)) return `${where} must be > ${schema.exclusiveMinimum}`;
  }
  if (typeof value === 'string' && schema.minLength !== undefined && value.length < schema.minLength) return `${where} must not be empty`;
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return `${where} needs at least ${schema.minItems} items`;
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return `${where} takes at most ${schema.maxItems} items`;
    for (const [index, item] of value.entries()) {
      const problem = schema.items && schemaViolation(item, schema.items, `${where}[${index}]`);
      if (problem) return problem;
    }
  }
  if (typeOf(value) === 'object') {
    const missing = (schema.required ?? []).filter((key) => !(key in value));
    if (missing.length) return `${where} lacks ${missing.join(', ')}`;
    for (const [key, rule] of Object.entries(schema.properties ?? {})) {
      const problem = key in value && schemaViolation(value[key], rule, `${where}.${key}`);
      if (problem) return problem;
    }
  }
  return null;
}

async function checkPipeline(pipeline, url) {
  const problem = (text) => new ModelFolderError(`${url}: ${text}`);
  const again = 'export the folder again with tsm export';
  if (pipeline?.format !== PIPELINE_FORMAT || !Number.isInteger(pipeline?.version)) {
    throw problem(`it is not a ${PIPELINE_FORMAT} file of version 1-${PIPELINE_VERSION} (written by an older tsm?); ${again}`);
  }
  if (pipeline.version > PIPELINE_VERSION) {
    throw problem(
      `version ${pipeline.version} was written by a newer tsm; this tsm.js reads up to version ${PIPELINE_VERSION}: ` +
        'use the tsm.js of the folder\'s own export, or update this page\'s tsm.js',
    );
  }
  const violation = schemaViolation(pipeline, await fetchJson(SCHEMA_URL, 'pipeline.schema.json (beside tsm.js)'));
  if (violation) throw problem(`${violation} (pipeline.schema.json); ${again}`);
  if (pipeline.interpolation !== 'bilinear' || pipeline.antialias !== true) {
    throw problem(`tsm.js resizes with antialiased bilinear interpolation only, the pipeline asks for ${pipeline.interpolation}${pipeline.antialias ? ' antialiased' : ''}`);
  }
  const caches = pipeline.inputs.caches;
  if (caches.length !== pipeline.outputs.caches.length) {
    throw problem(`inputs.caches and outputs.caches must be lists of the same length; ${again}`);
  }
}

function checkClasses(classes, pipeline, url) {
  if (!Array.isArray(classes) || classes.length !== pipeline.num_classes || !classes.every((c) => typeof c === 'string')) {
    throw new ModelFolderError(
      `${url} must list ${pipeline.num_classes} class names (the model's classes), ` +
        `got ${Array.isArray(classes) ? classes.length + ' entries' : typeof classes}`,
    );
  }
}

function checkSession(session, pipeline, url) {
  const inputs = [pipeline.inputs.frames, ...pipeline.inputs.caches.map((cache) => cache.name)];
  const outputs = [pipeline.outputs.logits, ...pipeline.outputs.caches];
  const same = (a, b) => a.length === b.length && a.every((name, index) => name === b[index]);
  if (!same(session.inputNames, inputs) || !same(session.outputNames, outputs)) {
    throw new ModelFolderError(
      `${url} does not match pipeline.json: it takes ${session.inputNames.join(', ')} and gives ` +
        `${session.outputNames.join(', ')}; export the folder again`,
    );
  }
}

const sessions = new Map(); // model URL + engine -> Promise<{session, engine}>

async function createSession(modelUrl, engine, threads) {
  const bytes = new Uint8Array(await (await fetchFile(modelUrl, 'the ONNX model')).arrayBuffer());
  const ort = await runtimeFor(engine, threads);
  const providers = engine === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];
  try {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: providers });
    return { ort, session, engine };
  } catch (error) {
    const message = error?.message ?? String(error);
    if (engine === 'webgpu') {
      console.warn(`tsm.js: WebGPU could not run the model (${message}); using WebAssembly`);
      return createSession(modelUrl, 'wasm', threads);
    }
    throw new ModelFolderError(`${modelUrl} is not a model ONNX Runtime can load: ${message}`);
  }
}

function sharedSession(modelUrl, engine, threads) {
  const key = `${engine} ${modelUrl}`;
  if (!sessions.has(key)) {
    const creating = createSession(modelUrl, engine, threads);
    sessions.set(key, creating);
    creating.catch(() => sessions.delete(key)); // a fixed folder can be loaded again
  }
  return sessions.get(key);
}

// ---- Preprocessing: the checkpoint's test pipeline -----------------------------------------------

/** torchvision's size for resizing the short side to `size` (Resize(int)). */
export function resizedSize(height, width, size) {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [newLong, size] : [size, newLong];
}

/**
 * One axis of PyTorch's antialiased bilinear resize (align_corners=False) as it runs on uint8
 * images (the Pillow-SIMD kernel of ATen's UpSampleKernel): a triangle filter widened by the
 * downscale factor, weights normalised per output sample, then turned into int16 fixed point at
 * the largest precision that keeps the biggest weight under 2^15.
 */
function axisWeights(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const starts = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const taps = Math.ceil(support) * 2 + 1;
  const real = new Float64Array(outSize * taps);
  let largest = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - first, 0), taps);
    let total = 0;
    for (let j = 0; j < count; j++) {
      const x = Math.abs((j + first - center + 0.5) * invscale);
      const weight = x < 1 ? 1 - x : 0;
      real[i * taps + j] = weight;
      total += weight;
    }
    if (total !== 0) {
      for (let j = 0; j < count; j++) {
        real[i * taps + j] /= total;
        largest = Math.max(largest, real[i * taps + j]);
      }
    }
    starts[i] = first;
    counts[i] = count;
  }
  let precision = 0;
  while (precision < 22 && Math.trunc(0.5 + largest * 2 ** (precision + 1)) < 2 ** 15) precision++;
  const weights = new Int32Array(outSize * taps);
  for (let k = 0; k < weights.length; k++) weights[k] = Math.trunc(0.5 + real[k] * 2 ** precision);
  return { starts, counts, taps, weights, precision };
}

/** Resample an RGBA image along one axis (uint8 in, uint8 out, rounded as PyTorch rounds). */
function resampleAxis(source, width, height, outSize, horizontal) {
  const inSize = horizontal ? width : height;
  const { starts, counts, taps, weights, precision } = axisWeights(inSize, outSize);
  const outWidth = horizontal ? outSize : width;
  const outHeight = horizontal ? height : outSize;
  const output = new Uint8ClampedArray(outWidth * outHeight * 4);
  const half = 2 ** (precision - 1);
  const unit = 2 ** precision;
  const step = horizontal ? 4 : width * 4; // bytes between neighbours along the axis
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const o = horizontal ? x : y;
      const base = horizontal ? (y * width + starts[o]) * 4 : (starts[o] * width + x) * 4;
      const target = (y * outWidth + x) * 4;
      for (let c = 0; c < 4; c++) {
        let sum = half;
        for (let j = 0; j < counts[o]; j++) sum += weights[o * taps + j] * source[base + j * step + c];
        output[target + c] = Math.floor(sum / unit); // Uint8ClampedArray clamps to 0..255
      }
    }
  }
  return output;
}

/** Resize RGBA pixels so that the short side is `size`: width first, then height, as PyTorch does. */
export function resizeShortSide(image, size) {
  const { width, height } = image;
  const [newHeight, newWidth] = resizedSize(height, width, size);
  let data = image.data;
  if (newWidth !== width) data = resampleAxis(data, width, height, newWidth, true);
  if (newHeight !== height) data = resampleAxis(data, newWidth, height, newHeight, false);
  return { data, width: newWidth, height: newHeight };
}

/** Python's round(): halves go to the even neighbour (torchvision's centre-crop anchor). */
function roundHalfEven(value) {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** torchvision's centre-crop offset along one axis (negative: zero padding before the image). */
function cropOffset(size, crop) {
  return crop > size ? -Math.floor((crop - size) / 2) : roundHalfEven((size - crop) / 2);
}

/**
 * The test pipeline on one RGBA image ({data, width, height}, e.g. an ImageData): the model's
 * input, float32 (3, H, W) in RGB planes, as tsm's frame_transform computes it in PyTorch.
 */
export function preprocess(image, pipeline) {
  const resized = pipeline.resize ? resizeShortSide(image, pipeline.resize) : image;
  const { data, width, height } = resized;
  const [cropHeight, cropWidth] = pipeline.crop_size;
  const top = cropOffset(height, cropHeight);
  const left = cropOffset(width, cropWidth);
  const scale = Math.fround(pipeline.scale);
  const mean = pipeline.mean.map(Math.fround);
  const std = pipeline.std.map(Math.fround);
  const plane = cropHeight * cropWidth;
  const output = new Float32Array(3 * plane);
  for (let y = 0; y < cropHeight; y++) {
    const row = y + top;
    for (let x = 0; x < cropWidth; x++) {
      const column = x + left;
      const inside = row >= 0 && row < height && column >= 0 && column < width;
      const source = (row * width + column) * 4;
      for (let c = 0; c < 3; c++) {
        const value = inside ? data[source + c] : 0;
        // float32 at every step, in torchvision's order: to float, * (1/255), - mean, / std
        const shifted = Math.fround(Math.fround(value * scale) - mean[c]);
        output[c * plane + y * cropWidth + x] = Math.fround(shifted / std[c]);
      }
    }
  }
  return output;
}

// ---- Frames in: ImageData, VideoFrame, or anything a canvas can draw ----------------------------

async function rgbaPixels(frame) {
  if (frame?.data && Number.isInteger(frame.width) && Number.isInteger(frame.height)) return frame;
  if (typeof VideoFrame !== 'undefined' && frame instanceof VideoFrame) {
    const width = frame.displayWidth;
    const height = frame.displayHeight;
    if (width === frame.codedWidth && height === frame.codedHeight) {
      try {
        const data = new Uint8ClampedArray(width * height * 4);
        await frame.copyTo(data, { format: 'RGBA', colorSpace: 'srgb' });
        return { data, width, height };
      } catch {
        // this browser cannot convert on copy: draw it instead
      }
    }
    return drawn(frame, width, height);
  }
  const width = frame?.videoWidth ?? frame?.naturalWidth ?? frame?.width;
  const height = frame?.videoHeight ?? frame?.naturalHeight ?? frame?.height;
  if (!(width > 0 && height > 0)) {
    throw new TypeError('tsm.js: step() takes an ImageData, a VideoFrame or an image, canvas or video with pixels');
  }
  return drawn(frame, width, height);
}

function drawn(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  return context.getImageData(0, 0, width, height);
}

// ---- Recognizer --------------------------------------------------------------------------------

function softmax(logits) {
  const largest = Math.max(...logits);
  const exps = Array.from(logits, (value) => Math.exp(value - largest));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((value) => value / total);
}

function topClasses(logits, classes, k) {
  const probabilities = softmax(logits);
  return probabilities
    .map((p, index) => [classes[index], p, index])
    .sort((a, b) => b[1] - a[1] || a[2] - b[2])
    .slice(0, k)
    .map(([name, p]) => [name, p]);
}

/** One stream: its own caches on a (possibly shared) session. Make it with loadRecognizer(). */
export class Recognizer {
  #ort;
  #session;
  #pipeline;
  #caches;
  #pending = Promise.resolve();
  #generation = 0;
  #closed = false;

  constructor(ort, session, pipeline, classes, info) {
    this.#ort = ort;
    this.#session = session;
    this.#pipeline = pipeline;
    this.classes = classes;
    this.pipeline = pipeline;
    /** name, classes, numClasses, numSegments, frameSize, engine ('webgpu' | 'wasm'), threads, label. */
    this.info = info;
    this.reset();
  }

  /** Start the stream again: the next frame is a first frame (all caches zero). */
  reset() {
    this.#generation++;
    this.#caches = this.#pipeline.inputs.caches.map((cache) => {
      const shape = [1, ...cache.shape];
      return new this.#ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    });
  }

  /**
   * Feed the stream's next frame; resolves to {logits: Float32Array, top: [[name, probability]...]}.
   * Calls queue up in order; a reset() while a step runs starts the new stream after it.
   */
  step(frame) {
    const run = this.#pending.then(() => this.#stepNow(frame));
    this.#pending = run.catch(() => {});
    return run;
  }

  async #stepNow(frame) {
    if (this.#closed) throw new Error('tsm.js: this recognizer was closed');
    const pixels = await rgbaPixels(frame);
    const [height, width] = this.#pipeline.crop_size;
    const input = new this.#ort.Tensor('float32', preprocess(pixels, this.#pipeline), [1, 3, height, width]);
    const feeds = { [this.#pipeline.inputs.frames]: input };
    this.#pipeline.inputs.caches.forEach((cache, index) => (feeds[cache.name] = this.#caches[index]));
    const generation = this.#generation;
    const outputs = await exclusive(() => this.#session.run(feeds));
    if (generation === this.#generation) {
      this.#caches = this.#pipeline.outputs.caches.map((name) => outputs[name]);
    }
    const logits = Float32Array.from(outputs[this.#pipeline.outputs.logits].data);
    return { logits, top: topClasses(logits, this.classes, Math.min(TOP_K, this.classes.length)) };
  }

  /** Stop this stream (the shared model stays loaded for other recognizers). */
  close() {
    this.#closed = true;
    this.#caches = [];
  }
}

/**
 * Load a model folder (tsm export --format web writes one as DIR/model/) and resolve to a
 * Recognizer. Recognizers of one folder share the model and keep their own streams.
 *
 * options.engine: 'auto' (WebGPU when the browser has an adapter, else WebAssembly), 'webgpu' or
 * 'wasm'. options.threads: WebAssembly threads (default: up to 4 when the page is cross-origin
 * isolated, else 1); ONNX Runtime reads it once, when the first model of a build loads.
 */
export async function loadRecognizer(baseUrl, options = {}) {
  const base = new URL(String(baseUrl).endsWith('/') ? baseUrl : `${baseUrl}/`, globalThis.location?.href);
  const pipelineUrl = new URL('pipeline.json', base).href;
  const pipeline = await fetchJson(pipelineUrl, 'pipeline.json');
  await checkPipeline(pipeline, pipelineUrl);
  const classesUrl = new URL('classes.json', base).href;
  const classes = await fetchJson(classesUrl, 'classes.json');
  checkClasses(classes, pipeline, classesUrl);
  const asked = options.engine ?? 'auto';
  if (!['auto', 'webgpu', 'wasm'].includes(asked)) {
    throw new TypeError(`tsm.js: engine must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(asked)}`);
  }
  const engine = asked === 'wasm' || (asked === 'auto' && !(await hasWebGpu())) ? 'wasm' : 'webgpu';
  const threads = options.threads ?? defaultThreads();
  const modelUrl = new URL(pipeline.model, base).href;
  const loaded = await sharedSession(modelUrl, engine, threads);
  checkSession(loaded.session, pipeline, modelUrl);
  const isolated = Boolean(globalThis.crossOriginIsolated);
  const used = isolated ? loaded.ort.env.wasm.numThreads : 1;
  const threading = used > 1 ? `threads on: ${used}` : `threads off${isolated ? '' : ': page not cross-origin isolated'}`;
  const label = loaded.engine === 'webgpu' ? 'webgpu' : `wasm (SIMD, ${threading})`;
  const info = {
    name: pipeline.name,
    classes,
    numClasses: pipeline.num_classes,
    numSegments: pipeline.num_segments,
    frameSize: pipeline.frame_size,
    engine: loaded.engine,
    threads: loaded.engine === 'wasm' ? used : null,
    label,
  };
  return new Recognizer(loaded.ort, loaded.session, pipeline, classes, info);
}
