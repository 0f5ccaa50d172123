// A strip worker (see parallel.js): writes or checks one PNG strip per message, or (as a
// pipeline worker's helper, band.js) resizes a band of a photo's rows for the model, or
// upscales, refines and composes a band of its mask, or decodes a large PNG, WebP or AVIF
// photo (pipeline.js decodePhoto), or writes and reads back a large WebP, AVIF or JPEG file
// (writeAway): the codec's WASM heap, which never shrinks, goes with this worker, ended
// after its job. Holds no image between messages: each strip's or band's rows
// arrive as a transferred copy and go back or are dropped.

import { encodeStrip, pngRsStrip, checkStrip } from './png.js';
import { composeBand } from './band.js';
import { resizeRGB, previewPart } from './resize.js';
import { FFLATE, PNG } from './vendor.js';
import { ownBuffer } from './free.js';

const fflate = import(FFLATE + 'esm/browser.js');
let pngRs = null; // jSquash's png-rs, loaded on the first strip it writes (or on 'load')
const loadPngRs = () => (pngRs ||= import(PNG + 'codec/pkg/squoosh_png.js').then(async (m) => { await m.default(); return m; }));

self.onmessage = async (e) => {
  const { id, op, idat, rows, above, width, y0, last, level } = e.data;
  try {
    if (op === 'encode') {
      let out;
      if (e.data.writer === 'png-rs') {
        const m = await loadPngRs();
        out = pngRsStrip(rows, width, last, (px, w, h) => m.encode(px, w, h, 8));
        // the page's small preview of these rows, while they are here (parallel.js pngPieces)
        const pv = e.data.preview;
        if (pv) out.preview = previewPart(rows, width, pv.height, pv.side, y0, y0 + rows.length / (width * 4), y0);
      } else {
        out = encodeStrip(rows, above, width, last, level, (await fflate).Deflate);
      }
      self.postMessage({ id, result: out }, [out.idat.buffer]);
    } else if (op === 'load') {
      await loadPngRs();
      self.postMessage({ id, result: true });
    } else if (op === 'band') {
      const { n0, height, low, refine, ty0, ty1 } = e.data;
      const timings = {};
      composeBand(rows, n0, width, height, low, refine, ty0, ty1, timings);
      self.postMessage({ id, result: { rows, timings } }, [rows.buffer]);
    } else if (op === 'resize') {
      const { oy, height, outW, outH, y0, y1 } = e.data;
      const rgb = resizeRGB(rows, width, height, outW, outH, [y0, y1], oy);
      self.postMessage({ id, result: { rgb } }, [rgb.buffer]);
    } else if (op === 'load-decoder') {
      await (await import('./codecs.js')).preload(); // PNG's (WebP's and AVIF's load on first use)
      self.postMessage({ id, result: true });
    } else if (op === 'decode') {
      const codecs = await import('./codecs.js');
      const kind = codecs.sniff(e.data.bytes);
      await codecs.ready(kind);
      const img = await codecs.decode(e.data.bytes, e.data.type);
      const data = ownBuffer(img.data);
      self.postMessage({ id, result: { width: img.width, height: img.height, data } }, [data.buffer]);
    } else if (op === 'write') {
      // pipeline.js writeAway: the file written and read back; the pixels always go back
      const { rgba, height, fmt, icc } = e.data;
      const result = { rgba };
      try {
        const written = await (await import('./codecs.js')).writeChecked(rgba, width, height, fmt, icc);
        Object.assign(result, written, { file: ownBuffer(written.file) });
      } catch (err) {
        result.error = err?.message || String(err);
      }
      self.postMessage({ id, result }, result.file ? [rgba.buffer, result.file.buffer] : [rgba.buffer]);
    } else if (op === 'check') {
      self.postMessage({ id, result: await checkStrip(idat, rows, above, width, y0, last) });
    } else {
      throw new Error(`unknown strip operation ${op}`);
    }
  } catch (err) {
    self.postMessage({ id, error: err?.message || String(err) });
  }
};
