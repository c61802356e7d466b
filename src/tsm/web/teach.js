/**
 * The Teach panel of the live page (`tsm serve --teach DIR`, docs/teach.md): classes, clips
 * recorded from the preview (MediaRecorder, after a countdown) or added as files, their
 * thumbnails, and a training run with its progress. It talks to the `/teach/*` endpoints; when a
 * run is done the server switches the live model itself, and the stream says so to the page.
 */

import { withToken } from './server-backend.js';

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const POLL_MS = 500;
const RECORDING_TYPES = ['video/webm;codecs=vp8', 'video/webm;codecs=vp9', 'video/webm', 'video/mp4'];
const PHASE_WORDS = {
  features: 'Reading the clips',
  training: 'Training the classifier',
  switching: 'Putting the model live',
};

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? body.detail ?? `the server answered ${response.status}`);
  return body;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class TeachPanel {
  constructor(page) {
    this.page = page;
    this.clips = [];
    this.pending = new Set();  // classes added here that have no clip yet
    this.busy = false;         // recording or uploading
    this.polling = false;
  }

  async start() {
    $('teach').hidden = false;
    document.body.classList.add('teaching');
    for (const kind of ['model', 'web', 'onnx']) $(`download-${kind}`).href = withToken(`teach/download/${kind}`);
    $('teach-add-class').addEventListener('submit', (event) => {
      event.preventDefault();
      this.addClass($('teach-class-name').value);
    });
    $('teach-train-button').addEventListener('click', () => this.train());
    await this.refresh();
    const status = await answer(await fetch(withToken('teach/status'))).catch(() => null);
    if (status) this.showStatus(status);
    if (status?.state === 'running') this.poll();
  }

  say(text, bad = false) {
    const message = $('teach-message');
    message.textContent = text;
    message.classList.toggle('bad', bad);
  }

  addClass(name) {
    const label = name.trim();
    if (!label) return;
    if (!/^[\p{L}\p{N}][\p{L}\p{N}_ .-]{0,39}$/u.test(label)) {
      this.say('A class name is 1–40 letters, digits, spaces or _ . - (starting with a letter or digit).', true);
      return;
    }
    this.pending.add(label);
    $('teach-class-name').value = '';
    this.say(`Added “${label}”: record a few clips of it.`);
    this.render();
  }

  async refresh() {
    try {
      const listing = await answer(await fetch(withToken('teach/clips')));
      this.clips = listing.clips;
      this.limits = listing.limits;
      for (const clip of this.clips) this.pending.delete(clip.label);
    } catch (error) {
      this.say(`Cannot list the clips: ${error.message}`, true);
    }
    this.render();
  }

  classes() {
    const names = new Set(this.clips.map((clip) => clip.label));
    for (const name of this.pending) names.add(name);
    return [...names].sort();
  }

  render() {
    const cards = this.classes().map((label) => this.card(label));
    if (!cards.length) {
      cards.push(element('p', 'teach-empty', 'No classes yet: add one above, e.g. “wave”, then one for doing nothing.'));
    }
    $('teach-classes').replaceChildren(...cards);
    const counts = this.classes().map((label) => this.clips.filter((clip) => clip.label === label).length);
    const ready = counts.filter((count) => count >= 2).length >= 2 && counts.every((count) => count >= 2);
    $('teach-train-button').disabled = !ready || this.polling;
  }

  card(label) {
    const clips = this.clips.filter((clip) => clip.label === label);
    const card = element('article', 'teach-class');
    card.dataset.label = label;
    const head = element('header');
    head.append(element('span', 'teach-name', label), element('span', 'teach-count', `${clips.length} clip${clips.length === 1 ? '' : 's'}`));
    const thumbs = element('div', 'teach-thumbs');
    for (const clip of clips) thumbs.append(this.thumb(clip));
    if (!clips.length) thumbs.append(element('span', 'teach-none', 'no clips yet'));
    const actions = element('div', 'teach-actions');
    const record = element('button', 'record', 'Record');
    record.type = 'button';
    record.disabled = this.busy;
    record.addEventListener('click', () => this.record(label));
    const pick = element('label', 'button secondary', 'Add video');
    const input = element('input');
    Object.assign(input, { type: 'file', accept: 'video/*', hidden: true, multiple: true });
    input.addEventListener('change', () => this.addFiles(label, [...input.files]));
    pick.append(input);
    actions.append(record, pick);
    card.append(head, thumbs, actions);
    return card;
  }

  thumb(clip) {
    const figure = element('figure', 'teach-thumb');
    figure.dataset.clip = clip.id;
    const image = element('img');
    image.src = withToken(clip.thumbnail);
    image.alt = `${clip.label}, ${clip.seconds} s`;
    image.loading = 'lazy';
    image.addEventListener('error', () => image.remove(), { once: true });  // a clip put in the folder by hand
    const length = element('figcaption', '', `${clip.seconds.toFixed(1)} s`);
    const remove = element('button', 'delete', '×');
    Object.assign(remove, { type: 'button', title: 'Delete this clip' });
    remove.setAttribute('aria-label', `Delete this clip of ${clip.label}`);
    remove.addEventListener('click', () => this.remove(clip));
    figure.append(image, length, remove);
    return figure;
  }

  async remove(clip) {
    try {
      await answer(await fetch(withToken(`teach/clips/${encodeURIComponent(clip.id)}`), { method: 'DELETE' }));
      if (this.clips.filter((other) => other.label === clip.label).length === 1) this.pending.add(clip.label);
    } catch (error) {
      this.say(`Cannot delete the clip: ${error.message}`, true);
    }
    await this.refresh();
  }

  async upload(label, body, what) {
    const url = withToken(`teach/clips?label=${encodeURIComponent(label)}`);
    try {
      const clip = await answer(await fetch(url, { method: 'POST', body }));
      this.say(`Added a ${clip.seconds.toFixed(1)} s clip of “${label}”.`);
    } catch (error) {
      this.say(`${what}: ${error.message}`, true);
    }
    await this.refresh();
  }

  async addFiles(label, files) {
    this.setBusy(true);
    for (const file of files) await this.upload(label, file, file.name);
    this.setBusy(false);
  }

  setBusy(busy) {
    this.busy = busy;
    this.render();
  }

  /** Count down over the preview, then record `seconds` of what it shows (the camera as it is,
   * not mirrored: the frames the model sees live) and upload it. */
  async record(label) {
    const video = this.page.video;
    const stream = this.page.cameraStream ?? video.captureStream?.();
    if (!stream || !window.MediaRecorder) {
      this.say('Nothing to record: start the camera (or a video file) first.', true);
      return;
    }
    const seconds = Number($('teach-seconds').value);
    this.setBusy(true);
    const overlay = $('recording');
    overlay.hidden = false;
    $('recording-label').textContent = label;
    overlay.classList.remove('live');
    for (let left = Number($('teach-countdown').value); left > 0; left -= 1) {
      $('recording-count').textContent = left;
      await sleep(1000);
    }
    try {
      const blob = await this.capture(stream, seconds);
      overlay.hidden = true;
      await this.upload(label, blob, 'The recording');
    } catch (error) {
      this.say(`Cannot record: ${error.message}`, true);
    } finally {
      overlay.hidden = true;
      this.setBusy(false);
    }
  }

  async capture(stream, seconds) {
    const mimeType = RECORDING_TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const chunks = [];
    recorder.addEventListener('dataavailable', (event) => { if (event.data.size) chunks.push(event.data); });
    const stopped = new Promise((resolve) => recorder.addEventListener('stop', resolve, { once: true }));
    const overlay = $('recording');
    overlay.classList.add('live');
    $('recording-count').textContent = 'REC';
    const fill = $('recording-fill');
    fill.style.transition = 'none';
    fill.style.width = '0%';
    recorder.start();
    requestAnimationFrame(() => {
      fill.style.transition = `width ${seconds}s linear`;
      fill.style.width = '100%';
    });
    await sleep(seconds * 1000);
    recorder.stop();
    await stopped;
    return new Blob(chunks, { type: recorder.mimeType || 'video/webm' });
  }

  async train() {
    try {
      await answer(await fetch(withToken('teach/train'), { method: 'POST' }));
    } catch (error) {
      this.say(`Cannot train: ${error.message}`, true);
      return;
    }
    this.say('Training: the live label keeps the current model until the new one is ready.');
    this.poll();
  }

  async poll() {
    if (this.polling) return;
    this.polling = true;
    this.render();
    try {
      for (;;) {
        const status = await answer(await fetch(withToken('teach/status')));
        this.showStatus(status);
        if (status.state !== 'running') break;
        await sleep(POLL_MS);
      }
    } catch (error) {
      this.say(`Lost the training's status: ${error.message}`, true);
    } finally {
      this.polling = false;
      this.render();
    }
  }

  showStatus(status) {
    document.body.dataset.teach = status.state;
    const fraction = { features: 0.85 * (status.clips_done ?? 0) / Math.max(1, status.clips_total ?? 1), training: 0.9, switching: 0.95 };
    const done = status.state === 'done' || status.state === 'failed';
    $('teach-fill').style.width = `${100 * (done ? 1 : fraction[status.phase] ?? 0)}%`;
    $('teach-clips').textContent = status.clips_total ? `${status.clips_done}/${status.clips_total}` : '–';
    $('teach-loss').textContent = Number.isFinite(status.loss) ? status.loss.toFixed(3) : '–';
    const accuracy = status.held_out_accuracy;
    $('teach-accuracy').textContent = Number.isFinite(accuracy) ? `${Math.round(100 * accuracy)} %` : '–';
    $('teach-left').textContent = status.state === 'running' && Number.isFinite(status.seconds_left) ? `${status.seconds_left} s` : '–';
    const phase = $('teach-phase');
    if (status.state === 'running') {
      phase.textContent = `${PHASE_WORDS[status.phase] ?? 'Working'}… (${status.run}, ${status.seconds} s)`;
    } else if (status.state === 'done') {
      if (this.polling) this.say('Done: the live label now names your classes. Record more and train again to improve it.');
      const held = status.held_out_clips ? `, ${Math.round(100 * accuracy)} % on ${status.held_out_clips} held-out clips` : '';
      phase.textContent = `Live: ${status.run} recognises ${status.classes.join(', ')} (${status.seconds} s from Train to live${held}).`;
    } else if (status.state === 'failed') {
      phase.textContent = `The run failed, the live model is unchanged: ${status.error}`;
    }
    phase.classList.toggle('bad', status.state === 'failed');
    $('teach-downloads').hidden = status.served === 'base' || !status.served;
  }
}
