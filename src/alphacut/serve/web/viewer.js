// The full-size viewer and brush editor (page side). It shows screen-sized bitmaps the worker
// renders from the full-resolution pixels (edit.js) and sends brush strokes in image
// coordinates; it never holds the photo's pixels, so a 48 MP photo costs this thread no more
// than a small one. Between two bitmaps, the last one is drawn moved and scaled, so pan and
// zoom follow the pointer at once. The canvas only shows pixels; files come from the worker.

const $ = (sel) => document.querySelector(sel);
const MAX_ZOOM = 4; // 400 %: four device pixels per image pixel

export class Viewer {
  constructor({ worker, note, onClose }) {
    Object.assign(this, { worker, note, onClose });
    this.el = $('#viewer');
    this.stage = $('#stage');
    this.canvas = $('#view');
    this.ctx = this.canvas.getContext('2d');
    this.job = null;
    this.seq = 0;
    this.inflight = false;
    this.pending = false;
    this.frame = null;
    this.pointers = new Map();
    this.gesture = null; // 'pan' | 'pinch' | 'stroke' | 'divider'
    this.points = [];
    this.stroke = null;
    this.wire();
  }

  get tool() {
    return document.querySelector('input[name="tool"]:checked').value;
  }

  open(job) {
    if (job.saving) return; // its file is being written and checked from the kept pixels: edit after
    this.job = job;
    this.frame = null;
    this.inflight = false; // an answer to the last visit's request is ignored by its seq
    this.pending = false;
    this.dirty = false;
    this.el.hidden = false;
    document.body.classList.add('viewing');
    $('#viewer-title').textContent = job.outName || job.name;
    this.showFileOptions(job.fileOptions || { format: job.format });
    if (!job.fileOptions) job.fileOptions = this.fileOptions();
    $('#viewer-status').textContent = 'opening…';
    this.worker.postMessage({ type: 'edit-open', id: job.id });
    $('#viewer-done').focus();
  }

  close() {
    if (!this.job) return;
    this.endStroke();
    const job = this.job;
    this.job = null;
    this.el.hidden = true;
    document.body.classList.remove('viewing');
    if (this.frame) this.frame.bitmap.close();
    this.frame = null;
    const options = this.fileOptions();
    const changed = JSON.stringify({ ...options, bgFile: null }) !== JSON.stringify({ ...(job.fileOptions || {}), bgFile: null }) ||
      options.bgFile !== job.fileOptions?.bgFile;
    job.fileOptions = options;
    this.onClose(job, this.dirty || changed, this.toMessage(options));
  }

  // --- the file's options (rule 11): format, background, shadow, crop
  fileOptions() {
    const kind = $('#bg-kind').value;
    return {
      format: $('#edit-format').value,
      kind, color: $('#bg-color').value, x: Number($('#bg-x').value), y: Number($('#bg-y').value),
      blur: Number($('#bg-blur').value), shadow: $('#bg-shadow').checked,
      crop: $('#crop').checked, padding: $('#crop-pad').value.trim() || '0', aspect: $('#crop-aspect').value,
      bgFile: $('#bg-image').files[0] || this.bgFile || null,
    };
  }

  showFileOptions(o) {
    const fmt = $('#edit-format');
    fmt.value = o.format && [...fmt.options].some((x) => x.value === o.format) ? o.format : 'png';
    $('#bg-kind').value = o.kind || 'none';
    if (o.color) $('#bg-color').value = o.color;
    $('#bg-x').value = o.x ?? 50; $('#bg-y').value = o.y ?? 50;
    $('#bg-blur').value = o.blur ?? 20;
    $('#bg-shadow').checked = !!o.shadow;
    $('#crop').checked = !!o.crop;
    $('#crop-pad').value = o.padding ?? '0';
    $('#crop-aspect').value = o.aspect || '';
    this.bgFile = o.bgFile || null;
    $('#bg-image').value = '';
    this.fileChanged();
  }

  /** What the worker needs: {format, background, shadow, crop}. */
  toMessage(o) {
    const hex = o.color.replace('#', '');
    const background = o.kind === 'color' ? { kind: 'color', color: [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) }
      : o.kind === 'image' ? { kind: 'image', file: o.bgFile, x: o.x / 100, y: o.y / 100 }
      : o.kind === 'blur' ? { kind: 'blur', radius: o.blur } : null;
    const aspect = o.aspect ? o.aspect.split(':').map(Number) : null;
    return { format: o.format, background, shadow: !!(background && o.shadow), crop: o.crop ? { padding: o.padding, aspect } : null };
  }

  fileChanged() {
    const o = this.fileOptions();
    const kind = o.kind;
    $('#bg-color').hidden = kind !== 'color';
    $('#bg-image-label').hidden = kind !== 'image';
    $('#bg-x').parentElement.hidden = kind !== 'image';
    $('#bg-blur').parentElement.hidden = kind !== 'blur';
    $('#bg-shadow').parentElement.hidden = kind === 'none';
    $('#crop-pad').parentElement.hidden = $('#crop-aspect').parentElement.hidden = !o.crop;
    const notes = [];
    if (kind !== 'none') notes.push('flattened: no transparency in the file');
    if (o.format === 'jpeg' && kind === 'none') notes.push('JPEG needs a background');
    if (kind === 'image') notes.push(o.bgFile ? o.bgFile.name : 'no image chosen');
    $('#file-note').textContent = notes.join(' · ');
    // the "file's background" backdrop: the colour, or the image (cover); blur shows white
    this.stage.style.setProperty('--file-color', kind === 'color' ? o.color : '#fff');
    if (this.bgUrl) URL.revokeObjectURL(this.bgUrl);
    this.bgUrl = kind === 'image' && o.bgFile ? URL.createObjectURL(o.bgFile) : null;
    this.stage.style.setProperty('--file-bg', this.bgUrl ? `url("${this.bgUrl}")` : 'none');
    this.stage.style.setProperty('--file-pos', `${o.x}% ${o.y}%`);
  }

  onMessage(msg) {
    if (!this.job || msg.id !== this.job.id || (msg.type === 'edit-view' && msg.seq !== this.seq)) {
      if (msg.type === 'edit-view') msg.bitmap.close();
      return;
    }
    if (msg.type === 'edit-opened') {
      this.iw = msg.width;
      this.ih = msg.height;
      $('#viewer-status').textContent = `${msg.width}×${msg.height}`;
      this.resize();
      this.fit();
      this.note('viewer-open', { id: msg.id, width: msg.width, height: msg.height });
    } else if (msg.type === 'edit-progress') {
      $('#viewer-status').textContent = `opening: ${msg.stage}…`; // the full-size pixels rebuilt
    } else if (msg.type === 'edit-view') {
      this.inflight = false;
      if (this.frame) this.frame.bitmap.close();
      this.frame = { bitmap: msg.bitmap, view: msg.view };
      this.draw();
      this.note('view', { seq: msg.seq });
      if (this.pending) this.requestView();
    } else if (msg.type === 'edit-state') {
      $('#undo').disabled = !msg.canUndo;
      $('#redo').disabled = !msg.canRedo;
      this.dirty = msg.dirty;
      this.note('edit-state', { id: msg.id, canUndo: msg.canUndo, canRedo: msg.canRedo });
      this.requestView();
    } else if (msg.type === 'edit-error') {
      this.inflight = false;
      $('#viewer-status').textContent = msg.message;
      this.note('edit-error', { id: msg.id, message: msg.message });
    }
  }

  // --- geometry: screen (device px) = image × zoom + t
  resize() {
    const dpr = devicePixelRatio || 1;
    const r = this.stage.getBoundingClientRect();
    this.dpr = dpr;
    this.canvas.width = Math.max(1, Math.floor(r.width * dpr));
    this.canvas.height = Math.max(1, Math.floor(r.height * dpr));
    // exactly canvas/dpr CSS pixels, so pointer positions map to canvas pixels exactly
    this.canvas.style.width = `${this.canvas.width / dpr}px`;
    this.canvas.style.height = `${this.canvas.height / dpr}px`;
    if (this.divider === undefined) this.divider = r.width / 2;
    this.placeDivider();
  }

  fitZoom() {
    return Math.min(this.canvas.width / this.iw, this.canvas.height / this.ih);
  }

  minZoom() {
    return Math.min(this.fitZoom(), 1);
  }

  setZoom(z, sx = this.canvas.width / 2, sy = this.canvas.height / 2) {
    z = Math.min(MAX_ZOOM, Math.max(this.minZoom(), z));
    this.tx = sx - ((sx - this.tx) * z) / this.zoom;
    this.ty = sy - ((sy - this.ty) * z) / this.zoom;
    this.zoom = z;
    this.changed();
  }

  fit() {
    this.zoom = this.fitZoom();
    this.tx = (this.canvas.width - this.iw * this.zoom) / 2;
    this.ty = (this.canvas.height - this.ih * this.zoom) / 2;
    this.changed();
  }

  oneToOne() {
    this.setZoom(1);
  }

  changed() {
    $('#zoom-label').textContent = `${Math.round(this.zoom * 100)} %`;
    this.draw();
    this.requestView();
  }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    const sx = (e.clientX - r.left) * this.dpr, sy = (e.clientY - r.top) * this.dpr;
    return [(sx - this.tx) / this.zoom, (sy - this.ty) * 1 / this.zoom];
  }

  // --- drawing
  requestView() {
    if (!this.job || this.iw === undefined) return;
    if (this.inflight) { this.pending = true; return; }
    this.inflight = true;
    this.pending = false;
    const view = { zoom: this.zoom, tx: this.tx, ty: this.ty };
    this.worker.postMessage({
      type: 'edit-view', id: this.job.id, seq: ++this.seq, view,
      x0: -this.tx / this.zoom, y0: -this.ty / this.zoom, step: 1 / this.zoom,
      w: this.canvas.width, h: this.canvas.height,
      divider: $('#compare').checked ? this.divider * this.dpr : -1,
    });
  }

  draw() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      const { ctx, canvas } = this;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      if (!this.frame) return;
      const f = this.frame.view, k = this.zoom / f.zoom;
      ctx.imageSmoothingEnabled = k < 1;
      const b = this.frame.bitmap;
      ctx.drawImage(b, this.tx - f.tx * k, this.ty - f.ty * k, b.width * k, b.height * k);
    });
  }

  placeDivider() {
    const d = $('#divider');
    d.hidden = !$('#compare').checked;
    d.style.left = `${this.divider}px`;
  }

  // --- brush
  beginStroke(e) {
    const mode = this.tool;
    const size = Number($('#brush-size').value); // diameter in CSS pixels on screen
    const radius = (size / 2) * this.dpr / this.zoom;
    const softness = Number($('#brush-soft').value) / 100;
    this.stroke = { id: this.job.id, mode, radius, softness, points: [] };
    this.worker.postMessage({ type: 'stroke-begin', id: this.job.id, mode, radius, softness });
    this.addPoints(e);
  }

  addPoints(e) {
    const evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of evs.length ? evs : [e]) {
      const p = this.toImage(ev);
      this.points.push(p);
      this.stroke.points.push(p);
    }
    if (!this.flushing) {
      this.flushing = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.flushing = false;
    if (!this.points.length || !this.job) return;
    this.worker.postMessage({ type: 'stroke-points', id: this.job.id, points: this.points });
    this.points = [];
    this.requestView();
  }

  endStroke() {
    if (!this.stroke) return;
    this.flush();
    this.worker.postMessage({ type: 'stroke-end', id: this.stroke.id });
    this.note('stroke', this.stroke);
    this.stroke = null;
    this.dirty = true;
  }

  showCursor(e) {
    const c = $('#brush-cursor');
    const brushing = this.tool !== 'move' && e.pointerType !== 'touch';
    c.hidden = !brushing;
    if (!brushing) return;
    const r = this.stage.getBoundingClientRect();
    const size = Number($('#brush-size').value);
    c.style.width = c.style.height = `${size}px`;
    c.style.transform = `translate(${e.clientX - r.left - size / 2}px, ${e.clientY - r.top - size / 2}px)`;
  }

  command(type) {
    if (!this.job) return;
    this.endStroke();
    this.worker.postMessage({ type, id: this.job.id });
    this.note(type, { id: this.job.id });
    this.dirty = true;
  }

  // --- events
  wire() {
    const st = this.stage;
    st.addEventListener('pointerdown', (e) => {
      if (!this.job || e.target.closest('#divider')) return;
      e.preventDefault();
      try { st.setPointerCapture(e.pointerId); } catch { /* a pointer already gone */ }
      this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (this.pointers.size === 2) {
        this.endStroke();
        const [a, b] = [...this.pointers.values()];
        this.gesture = 'pinch';
        // the image point under the fingers' midpoint stays under it (two-finger pan too)
        const [ix, iy] = this.toImage({ clientX: (a.x + b.x) / 2, clientY: (a.y + b.y) / 2 });
        this.pinch = { dist: Math.hypot(a.x - b.x, a.y - b.y), zoom: this.zoom, ix, iy };
      } else if (this.pointers.size === 1) {
        const pan = this.tool === 'move' || e.button === 1 || this.space;
        this.gesture = pan ? 'pan' : 'stroke';
        if (!pan) this.beginStroke(e);
      }
    });
    st.addEventListener('pointermove', (e) => {
      this.showCursor(e);
      const prev = this.pointers.get(e.pointerId);
      if (!prev) return;
      const cur = { x: e.clientX, y: e.clientY };
      this.pointers.set(e.pointerId, cur);
      if (this.gesture === 'pan') {
        this.tx += (cur.x - prev.x) * this.dpr;
        this.ty += (cur.y - prev.y) * this.dpr;
        this.changed();
      } else if (this.gesture === 'pinch' && this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        const r = this.canvas.getBoundingClientRect();
        const mx = ((a.x + b.x) / 2 - r.left) * this.dpr, my = ((a.y + b.y) / 2 - r.top) * this.dpr;
        const p = this.pinch;
        this.zoom = Math.min(MAX_ZOOM, Math.max(this.minZoom(), p.zoom * Math.hypot(a.x - b.x, a.y - b.y) / p.dist));
        this.tx = mx - p.ix * this.zoom;
        this.ty = my - p.iy * this.zoom;
        this.changed();
      } else if (this.gesture === 'stroke' && this.stroke) {
        this.addPoints(e);
      }
    });
    const up = (e) => {
      if (!this.pointers.delete(e.pointerId)) return;
      if (this.gesture === 'stroke') this.endStroke();
      if (!this.pointers.size) this.gesture = null;
    };
    st.addEventListener('pointerup', up);
    st.addEventListener('pointercancel', up);
    st.addEventListener('pointerleave', () => { $('#brush-cursor').hidden = true; });
    st.addEventListener('wheel', (e) => {
      if (!this.job) return;
      e.preventDefault();
      const r = this.canvas.getBoundingClientRect();
      const step = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      this.setZoom(this.zoom * Math.exp(-step * (e.ctrlKey ? 0.01 : 0.002)),
        (e.clientX - r.left) * this.dpr, (e.clientY - r.top) * this.dpr);
    }, { passive: false });

    // the before/after divider, dragged on the image
    const div = $('#divider');
    div.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      e.stopPropagation();
      div.setPointerCapture(e.pointerId);
      this.gesture = 'divider';
    });
    div.addEventListener('pointermove', (e) => {
      if (this.gesture !== 'divider') return;
      const r = this.stage.getBoundingClientRect();
      this.divider = Math.max(0, Math.min(r.width, e.clientX - r.left));
      this.placeDivider();
      this.requestView();
    });
    div.addEventListener('pointerup', () => { this.gesture = null; });
    $('#compare').addEventListener('change', () => { this.placeDivider(); this.requestView(); });

    $('#zoom-in').addEventListener('click', () => this.setZoom(this.zoom * 1.5));
    $('#zoom-out').addEventListener('click', () => this.setZoom(this.zoom / 1.5));
    $('#zoom-fit').addEventListener('click', () => this.fit());
    $('#zoom-1').addEventListener('click', () => this.oneToOne());
    $('#undo').addEventListener('click', () => this.command('edit-undo'));
    $('#redo').addEventListener('click', () => this.command('edit-redo'));
    $('#reset').addEventListener('click', () => this.command('edit-reset'));
    $('#viewer-done').addEventListener('click', () => this.close());
    const backdrop = () => {
      this.stage.dataset.backdrop = $('#backdrop').value;
      this.stage.style.setProperty('--backdrop', $('#backdrop-color').value);
    };
    $('#backdrop').addEventListener('change', backdrop);
    for (const id of ['#bg-kind', '#bg-color', '#bg-image', '#bg-x', '#bg-y', '#bg-blur', '#bg-shadow', '#crop', '#crop-pad', '#crop-aspect', '#edit-format']) {
      $(id).addEventListener(id === '#crop-pad' ? 'change' : 'input', () => {
        if (id === '#bg-image' && $('#bg-image').files[0]) this.bgFile = $('#bg-image').files[0];
        this.fileChanged();
      });
    }
    $('#backdrop-color').addEventListener('input', () => { $('#backdrop').value = 'color'; backdrop(); });
    backdrop();
    document.addEventListener('keydown', (e) => {
      if (!this.job) return;
      const k = e.key.toLowerCase();
      if (e.key === 'Escape') { e.preventDefault(); this.close(); }
      else if ((e.ctrlKey || e.metaKey) && k === 'z') { e.preventDefault(); this.command(e.shiftKey ? 'edit-redo' : 'edit-undo'); }
      else if ((e.ctrlKey || e.metaKey) && k === 'y') { e.preventDefault(); this.command('edit-redo'); }
      else if (e.key === ' ' && !e.target.closest('button, input, select')) { e.preventDefault(); this.space = true; }
      else if (e.key === '+' || e.key === '=') this.setZoom(this.zoom * 1.5);
      else if (e.key === '-') this.setZoom(this.zoom / 1.5);
    });
    document.addEventListener('keyup', (e) => { if (e.key === ' ') this.space = false; });
    addEventListener('resize', () => {
      if (!this.job || this.iw === undefined) return;
      this.resize();
      this.setZoom(this.zoom);
    });
  }
}
