// A strip worker (see parallel.js): writes or checks one PNG strip per message. Holds no
// image between messages: each strip's rows arrive as a transferred copy and are dropped.

import { encodeStrip, checkStrip } from './png.js';
import { FFLATE } from './vendor.js';

const fflate = import(FFLATE + 'esm/browser.js');

self.onmessage = async (e) => {
  const { id, op, idat, rows, above, width, y0, last, level } = e.data;
  try {
    if (op === 'encode') {
      const out = encodeStrip(rows, above, width, last, level, (await fflate).Deflate);
      self.postMessage({ id, result: out }, [out.idat.buffer]);
    } else if (op === 'check') {
      self.postMessage({ id, result: await checkStrip(idat, rows, above, width, y0, last) });
    } else {
      throw new Error(`unknown strip operation ${op}`);
    }
  } catch (err) {
    self.postMessage({ id, error: err?.message || String(err) });
  }
};
