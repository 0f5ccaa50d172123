// The stages of one cut-out in the browser, in the order pipeline.py runs them natively:
// decode → resize to the model size → ONNX Runtime → float mask upscaled at full
// resolution → edge refinement (cwgf, as the Python default) → alpha = round(alpha_in × mask)
// on the original pixels → encode → decode again and compare. No 2D canvas holds output
// pixels. Each stage is a module named after its Python twin; the output formats are the
// server's table (alphacut/formats.py), received in config.json.

import { applyMask } from './compose.js';
import { toTensor, resizeFloat, clip01, previewRGBA, previewFromParts } from './resize.js';
import { refineMask } from './refine.js';
import { settleMask, guideFromTensor, DEFAULT_PARAMS as SETTLE } from './settle.js';
import * as codecs from './codecs.js';
import { extractIcc, pngWithIcc } from './icc.js';
import { imageSize, overLimit, DEFAULT_MAX_PIXELS } from './header.js';
import * as edit from './edit.js';
import { encodePng, verifyPng, pngPieces } from './parallel.js';
import { checkPng } from './verify.js';
import { stripRanges, pngHead } from './png.js';
import { composeAll, resizeAll } from './band.js';
import { discard } from './free.js';

const now = () => performance.now();

/** Large photos get small preview images (display only), so the page holds no full-size bitmaps. */
export const PREVIEW_SIDE = 1600;

/** The format called `name` in config.json's table (PNG, the first, if there is none). */
export function formatSpec(config, name) {
  return config.formats.find((f) => f.name === name) || config.formats[0];
}

/** Refuse a size the format's codec cannot hold, naming the formats that can. */
export function checkSize(config, spec, width, height) {
  const side = Math.max(width, height);
  if (spec.max_side && side > spec.max_side) {
    const fits = config.formats.filter((f) => f.alpha && (!f.max_side || f.max_side >= side)).map((f) => f.name.toUpperCase());
    throw new Error(`${width}x${height} is too large for ${spec.label.split(' ')[0]} (at most ${spec.max_side} px a side); choose ${fits.join(' or ')}`);
  }
}

/** The model's raw output as a float mask in [0, 1] at the model's size (mask.py). */
function maskFromOutput(raw, m) {
  let out = raw;
  if (m.activation === 'sigmoid') {
    out = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = 1 / (1 + Math.exp(-raw[i]));
  }
  if (m.normalize === 'minmax') {
    let lo = Infinity, hi = -Infinity;
    for (const v of out) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (hi - lo >= 0.05) {
      const r = Math.fround(hi - lo);
      out = out.map((v) => Math.fround(Math.fround(v - lo) / r));
    }
  }
  return clip01(out === raw ? Float32Array.from(raw) : out);
}

/** Wall-clock time in ms, comparable between workers (for the events' marks). */
export const wallClock = () => performance.timeOrigin + performance.now();

// When the model last returned a result here: a photo's tensor may be sent while the one
// before it still runs (worker.js), so its inference time starts when the model is free.
let modelFreeAt = 0;

/**
 * Cut out one image file: decode → preprocess → infer → mask → refine → compose → encode →
 * verify (prepare, then finish). `format` is a name from `config.formats` (one that carries
 * alpha; PNG otherwise); `ctx` gives the config, the page's preferences, fflate, a
 * `stage(text)` callback, `strips()` (the PNG strip workers) and `engine()`, which resolves
 * to the loaded model once it is ready. Returns the file (`blob`), its format, previews for
 * large photos, the cut-out pixels, the model-size mask (for the editor), the stage timings
 * and what the settle stage left uncertain.
 */
export async function cutOut(file, format, ctx) {
  return finish(await prepare(file, format, ctx), ctx);
}

/**
 * The stages up to the model's mask on its own grid (settled): decode, preprocess, infer.
 * Returns a job for finish(): the decoded pixels, the model-size mask and what the later
 * stages need, all structured-cloneable (finish may run in another worker, so the model
 * takes the next photo meanwhile). `ctx.admit(pixels)` (optional) resolves when a photo of
 * that many pixels (null: unknown) may be decoded (memory held by photos still being
 * finished elsewhere); `ctx.inferring()` (optional) is called once the model has the tensor;
 * `ctx.helper` (optional, band.js resizeAll) resizes half of a large photo in a helper worker;
 * `ctx.decoder` (optional) decodes a large PNG, WebP or AVIF photo in one (decodePhoto).
 */
export async function prepare(file, format, ctx) {
  const { config, prefs, fflate, stage } = ctx;
  const timings = {};
  const marks = {};
  let t = now();
  stage('reading');
  // The pixel limit is checked on the header before anything is decoded (first 1 MiB;
  // a JPEG's EXIF/ICC segments can push its SOF marker far in).
  const maxPixels = prefs.maxPixels > 0 ? prefs.maxPixels : DEFAULT_MAX_PIXELS;
  const refuseOver = (size) => {
    const refusal = overLimit(size, maxPixels);
    if (refusal) throw new Error(`${file.name || 'image'}: ${refusal}`);
  };
  const size = imageSize(new Uint8Array(await file.slice(0, 1 << 20).arrayBuffer()));
  refuseOver(size);
  if (ctx.admit) {
    const t0 = now();
    await ctx.admit(size ? size.width * size.height : null);
    t += now() - t0; // waiting for memory is not decoding
  }
  let input = new Uint8Array(await file.arrayBuffer());
  if (!size) refuseOver(imageSize(input));
  stage('decoding');
  const icc = extractIcc(input, codecs.sniff(input), fflate.unzlibSync);
  const img = await decodePhoto(input, file, size, ctx.decoder);
  input = null;
  refuseOver(img); // a header that did not tell (or lied): the decoded size is checked too
  const { width, height } = img;
  timings.decode = now() - t;
  let spec = formatSpec(config, format);
  if (!spec.alpha) spec = formatSpec(config, 'png'); // a format without alpha needs a background: the editor's
  checkSize(config, spec, width, height);
  // resized while the model loads (or starts again), if it is not ready yet
  t = now();
  stage('resizing');
  const [mw, mh] = config.model.input_size;
  const small = await resizeAll(img.data, width, height, mw, mh, ctx.helper); // half in a helper worker, if any
  const tensor = toTensor(small, mw, mh, config.model.mean, config.model.std);
  timings.preprocess = now() - t;
  // the settle stage's colour guide, from the model input before the engine takes it
  t = now();
  const settleOn = prefs.settle !== 'off' && mw === 1024 && mh === 1024;
  const guide = settleOn ? guideFromTensor(tensor, mw, mh, config.model.mean, config.model.std) : null;
  if (settleOn) timings.settle = now() - t;
  stage('waiting for the model');
  const engine = await ctx.engine();
  t = now();
  stage('running the model');
  const running = engine.run(tensor, mw, mh);
  running.catch(() => {}); // awaited below
  // While the model runs (in its own worker), the "before" preview of a large photo: it needs
  // only the photo, and the stages after the model wait for its mask.
  await new Promise((resolve) => setTimeout(resolve, 0)); // the tensor is posted first
  ctx.inferring?.(); // the next photo may be read meanwhile (worker.js)
  const beforePreview = Math.max(width, height) > PREVIEW_SIDE ? previewPng(img.data, width, height) : null;
  const raw = await running;
  const end = now();
  // the model's own time: from when it had both this tensor and nothing before it
  const start = Math.max(t, modelFreeAt);
  modelFreeAt = end;
  timings.infer = end - start;
  marks.inferStart = performance.timeOrigin + start;
  marks.inferEnd = performance.timeOrigin + end;
  ctx.afterInference?.(width * height); // the model may go now (worker.js)
  t = now();
  let lowMask = maskFromOutput(raw, config.model);
  let settled = null;
  if (guide) {
    // large half-believed parts of the subject, decided by the photo's colours (settle.py)
    stage('settling uncertain regions');
    settled = settleMask(guide, lowMask, mw, mh);
    lowMask = settled.mask;
    timings.settle += now() - t;
  } else {
    timings.upscale = now() - t; // the mask from the model's output: counted with its upscale
  }
  const uncertainty = {
    uncertain: settled ? settled.uncertain : 0, uncertainBox: settled ? settled.box : null,
    notice: !!settled && settled.uncertain >= SETTLE.noticeArea,
  };
  return { rgba: img.data, width, height, spec, icc, low: { mask: lowMask, width: mw, height: mh }, beforePreview, timings, marks, uncertainty };
}

/**
 * PNG (with alpha), WebP and AVIF photos of this many pixels or more are decoded by a helper
 * worker (`ctx.decoder`, ended after its job), and WebP, AVIF and JPEG files of this size
 * written by one (writeAway). Their codecs are WASM modules whose heap grows
 * to hold the photo they decode and never shrinks: a 12 MP PNG decoded in the pipeline worker
 * left 91 MiB there for the page's lifetime (docs/browser.md, "Memory"). JPEG and opaque PNG
 * are decoded by the platform (codecs.opaquePng), which keeps nothing.
 */
export const CODEC_AWAY_PIXELS = 2e6;

/** The photo's pixels from its bytes `input` (taken: transferred to the helper, or freed once
 *  decoded here). A helper that fails leaves the photo to this thread, from the file again
 *  (a damaged file then fails here, with its own message). */
async function decodePhoto(input, file, size, helper) {
  const kind = codecs.sniff(input);
  const wasm = kind === 'webp' || kind === 'avif' || (kind === 'png' && !codecs.opaquePng(input));
  if (helper && size && size.width * size.height >= CODEC_AWAY_PIXELS && wasm) {
    try {
      return await helper({ op: 'decode', bytes: input, type: file.type }, [input.buffer]);
    } catch (e) {
      input = new Uint8Array(await file.arrayBuffer());
    }
  }
  const img = await codecs.decode(input, file.type);
  discard(input); // the file's bytes (the decoder holds a copy)
  return img;
}

/** An image file's pixels (the editor's: a photo decoded again, a background image), by the
 *  same rule as a photo's first decode: a large PNG with alpha, WebP or AVIF in the helper
 *  `helper` (optional), so the codec's heap goes with it. */
export async function decodeFile(file, helper) {
  const input = new Uint8Array(await file.arrayBuffer());
  return decodePhoto(input, file, imageSize(input), helper);
}

/** The full-resolution stages of a job from prepare(): upscale, refine, compose, encode,
 *  verify; the same result as cutOut. Needs `ctx.prefs`, `fflate`, `stage`, `strips`;
 *  `ctx.band` (optional, band.js composeAll) runs half of a large photo's mask stages in a
 *  helper worker. */
export async function finish(job, ctx) {
  const { prefs, stage } = ctx;
  const { width, height, spec, icc, low, marks, uncertainty } = job;
  const timings = { ...job.timings, upscale: job.timings.upscale || 0, refine: 0, compose: 0 };
  if (prefs.refine === 'none') delete timings.refine;
  const img = { data: job.rgba, width, height };
  stage('upscaling the mask');
  // Upscaled, refined and applied in bands (in place: the decoded pixels become the
  // output; RGB untouched, alpha quantised once). The full-size mask is not kept: the
  // editor rebuilds it from the file and the model-size mask.
  await composeAll(img, low, prefs.refine !== 'none', timings, stage, ctx.band, prefs.bandPixels);
  let t = now();
  // Large photos get small preview images (display only), so the page does not hold
  // full-resolution bitmaps of the original and the cut-out.
  const big = Math.max(width, height) > PREVIEW_SIDE;
  const beforePreview = big ? job.beforePreview || previewPng(img.data, width, height) : null;
  timings.compose += now() - t;
  // a PNG written in strips brings the parts of the "after" preview with it (made by the
  // strip workers, which have time while this thread reads the file back)
  const after = big ? { side: PREVIEW_SIDE, parts: [], complete: false } : null;
  const out = await writeFile(img, spec, icc, ctx, timings, after);
  const rgba = img.data; // (back from a helper worker, if it wrote the file)
  const stats = {}; // counted by the preview's pass over a large photo
  t = now();
  const afterPreview = !big ? null
    : after.complete ? previewFile(previewFromParts(after.parts, width, height, PREVIEW_SIDE, stats))
      : previewPng(rgba, width, height, stats);
  if (big) timings.preview = now() - t; // the "after" preview's part on this thread
  if (!big) Object.assign(stats, alphaStats(rgba));
  // Blobs are made here, so the page thread never copies a large file.
  const blob = new Blob(out, { type: spec.mime });
  discard(...out); // the Blob has its own copy; the strips' pieces came from other workers (free.js)
  const previews = big
    ? { before: new Blob([beforePreview], { type: 'image/png' }), after: new Blob([afterPreview], { type: 'image/png' }) }
    : null;
  if (marks) marks.written = wallClock();
  return { blob, previews, format: spec, width, height, rgba, low, icc, timings, marks, uncertainty, stats };
}

/** The float mask at full resolution from the model-size one: upscale (mask.py), then the
 *  edge refinement guided by the photo, as pipeline.py runs them. Sets timings.upscale
 *  (from `t`) and timings.refine. */
function fullMask(lowMask, mw, mh, img, prefs, stage, timings, t) {
  const { width, height } = img;
  let mask = resizeFloat(lowMask, mw, mh, width, height, undefined, true); // clipped in the same pass
  timings.upscale = now() - t;
  if (prefs.refine !== 'none') {
    // the default refinement of the Python pipeline (cwgf), guided by the original pixels
    stage('refining edges');
    t = now();
    // in [0, 1], NaN as 0 (clip01's result); in place (a scratch object): no second full-size mask
    mask = refineMask(img.data, width, height, mask, {}, null, {});
    timings.refine = now() - t;
  }
  return mask;
}

/**
 * A finished photo's full-size state again, for the editor and for writing its file again:
 * the photo decoded from its file, the float mask from the model-size mask `low` (the same
 * stages as cutOut, so the same values bit for bit), `patch(mask)` (the editor's changed
 * tiles), then rule 3. `ctx.decoder` (optional): the helper a large photo is decoded by
 * (decodeFile). Returns {rgba, mask, alphaIn, width, height}.
 */
export async function rebuild(file, low, ctx, patch) {
  const { prefs, stage } = ctx;
  stage('decoding the photo again');
  const img = await decodeFile(file, ctx.decoder);
  stage('upscaling the mask');
  const mask = fullMask(low.mask, low.width, low.height, img, prefs, stage, {}, now());
  patch?.(mask);
  const alphaIn = edit.inputAlpha(img.data);
  const rgba = applyMask(img.data, mask, img.data);
  return { rgba, mask, alphaIn, width: img.width, height: img.height };
}

/** Encode, add the profile, decode again and compare (rules 7-9) the pixels of `img`
 *  ({data, width, height}): the file's bytes, as a list of pieces (a Blob's parts). A WebP,
 *  AVIF or JPEG of CODEC_AWAY_PIXELS or more is written by `ctx.encoder` (optional, a helper
 *  worker: writeAway), which hands the pixels back: `img.data` is then a new array (not with
 *  `ctx.keep`: a copy went). `preview`
 *  (optional, {side, parts, complete}): a PNG written in strips also brings the parts of its
 *  small preview (parallel.js pngPieces), `complete` then. */
export async function writeFile(img, spec, icc, ctx, timings, preview = null) {
  const { fflate, stage, strips, prefs } = ctx;
  const { data: rgba, width, height } = img;
  const fmt = spec.name;
  let t = now();
  stage(`encoding ${fmt.toUpperCase()}`);
  // jSquash; a PNG of two strips or more in strips on the strip workers (png.js: png-rs a
  // strip, read back as the strips arrive; with ?png=strips the Up-filtered fflate writer;
  // ?png=whole: one png-rs call)
  const writer = pngWriter(fmt, width, height, prefs);
  if (writer === 'png-rs') {
    try {
      const parts = await writeAndCheckStrips(rgba, width, height, icc, ctx, timings, t, preview);
      if (preview) preview.complete = true;
      return parts;
    } catch (e) {
      if (!e.encoding) throw e; // png-rs changed its stream: write the PNG whole
      t = now();
    }
  }
  if (fmt !== 'png') { // WebP, AVIF, JPEG: a large photo's by a helper worker
    const r = ctx.encoder && width * height >= CODEC_AWAY_PIXELS
      ? await writeAway(img, fmt, icc, ctx.encoder, ctx.keep)
      : await codecs.writeChecked(rgba, width, height, fmt, icc, () => stage('verifying'));
    timings.encode = r.encodeMs;
    timings.verify = r.verifyMs;
    return [r.file];
  }
  if (!writer) await codecs.ready('png'); // (loaded as the worker starts)
  let out = writer ? await encodePng(strips(), rgba, width, height, writer) : codecs.encode(rgba, width, height, fmt);
  // contract rule 9: an RGB profile goes to PNG outputs (never converted)
  if (icc) out = pngWithIcc(out, icc, fflate.zlibSync);
  timings.encode = now() - t;
  t = now();
  stage('verifying');
  // fflate's PNG strips are read back in parallel; any other file as a whole
  if (!(writer === 'fflate' && await verifyPng(strips(), out, rgba, width, height))) await codecs.verify(out, rgba, width, height);
  timings.verify = now() - t;
  return [out];
}

/**
 * codecs.writeChecked by a helper worker (`encoder`, ended after its job): libwebp's,
 * libavif's and MozJPEG's WASM heaps grow to hold the photo they encode, and their decoders'
 * the one they read back, and never shrink, so in this worker they would keep the largest
 * such photo's size for the page's lifetime. The pixels go there and come back (transferred,
 * `img.data` replaced), or with `keep` (the editor's pixels, which it may show meanwhile) a
 * copy goes; a failure there is this file's failure (its message kept), as here. A helper
 * that could not take the job (none, or it failed before the pixels went) leaves it here.
 */
async function writeAway(img, fmt, icc, encoder, keep = false) {
  const { data, width, height } = img;
  let r;
  try {
    r = await encoder({ op: 'write', rgba: data, width, height, fmt, icc }, keep ? [] : [data.buffer]);
  } catch (e) {
    if (data.byteLength) return codecs.writeChecked(data, width, height, fmt, icc); // the pixels are still here
    throw new Error(`could not write the ${fmt.toUpperCase()} file: ${e.message}`); // the helper failed with them
  }
  if (keep) discard(r.rgba); else img.data = r.rgba;
  if (r.error) throw new Error(r.error);
  return r;
}

/**
 * A PNG written by png-rs in strips on the strip workers and read back (verify.js, the
 * platform's zlib) piece by piece as the strips arrive, by this thread, which would otherwise
 * wait for them: on 2 cores the check then mostly runs beside the encoding instead of after
 * it. `timings.encode` ends when the last strip is in, `verify` is the rest.
 */
async function writeAndCheckStrips(rgba, width, height, icc, ctx, timings, t, preview) {
  let head = pngHead(width, height);
  if (icc) head = pngWithIcc(head, icc, ctx.fflate.zlibSync); // its iCCP chunk follows IHDR
  let written = 0; // when the last strip came in
  let told = false;
  const parts = [];
  async function* kept(pieces) {
    for await (const piece of pieces) {
      parts.push(piece);
      // told here, not in the strips' callback: a photo taken back (stage throws) then stops
      // the check instead of passing for a writer's failure
      if (written && !told) { told = true; ctx.stage('verifying'); }
      yield piece;
    }
  }
  const pieces = pngPieces(ctx.strips(), rgba, width, height, { head, written: () => { written = now(); }, preview });
  await checkPng(kept(pieces), rgba, width, height);
  timings.encode = written - t; // (set: the file's tail needed every strip)
  timings.verify = now() - written;
  return parts;
}

/**
 * PNGs of this many pixels or more are written by png-rs in strips on the strip workers. On the
 * 2-core machine that cut the 48 MP encode from 0.80-1.04 to 0.71-0.72 s (three A/B pairs);
 * at 12 MP, with the check beside the strips, it takes the time of one png-rs call (after
 * inference 1.04-1.15 s against 1.03-1.05 s) and spares the memory: a png-rs call in this
 * worker grows its WASM heap for the photo and the heap never shrinks (0.15 GiB kept for the
 * page's lifetime after a 12 MP photo), while the strip workers end when the queue is idle.
 */
export const PNG_STRIP_PIXELS = 4e6;

/** Which strip writer (parallel.js encodePng) writes this file, or null for one codec call. */
export function pngWriter(fmt, width, height, prefs) {
  if (fmt !== 'png' || prefs?.png === 'whole') return null;
  if (prefs?.png === 'strips') return 'fflate';
  const from = prefs?.pngStripPixels ?? PNG_STRIP_PIXELS;
  return width * height >= from && stripRanges(width, height).length >= 2 ? 'png-rs' : null;
}

/** A small PNG of a large photo for the page (display only); `stats` as previewRGBA's. */
export function previewPng(rgba, width, height, stats = null) {
  return previewFile(previewRGBA(rgba, width, height, PREVIEW_SIDE, stats));
}

/** The PNG of a preview image ({data, width, height}). */
function previewFile(p) {
  return codecs.encode(p.data, p.width, p.height, 'png');
}

/** How many pixels are partly and fully transparent (for the card). */
export function alphaStats(rgba) {
  let partial = 0, clear = 0;
  for (let i = 3; i < rgba.length; i += 4) {
    const a = rgba[i];
    if (a === 0) clear++; else if (a !== 255) partial++;
  }
  return { partial, clear, total: rgba.length / 4 };
}
