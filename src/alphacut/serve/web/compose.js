// The alpha contract (docs/alpha-contract.md) in JavaScript: the same bytes as the Python
// pipeline for the same pixels and mask (checked against tests/vectors/contract.json).
//
// - alpha_out = floor(alpha_in * m + 0.5), computed in float64 (JS numbers) from the float32
//   mask; never trunc(m * 255), never a Uint8Array assignment of a float (that truncates, and
//   wraps 256 to 0); RGB is never changed, alpha 0 included (straight alpha).
// - flattening on a background (background.js, rule 5) is integer-exact:
//   c = (c*A + bg*(255-A) + 127) // 255; tests/js/compose.test.js checks it on the same vectors.

/** Quantise alpha once: rgba (Uint8Array/Uint8ClampedArray, RGBA) × mask (Float32Array).
 *  Writes into `out` (may be `rgba` itself, for in-place work on large photos). */
export function applyMask(rgba, mask, out = new Uint8ClampedArray(rgba.length)) {
  const n = mask.length;
  if (rgba.length !== n * 4) throw new Error(`mask has ${n} values for ${rgba.length / 4} pixels`);
  if (out !== rgba) out.set(rgba);
  for (let i = 0, j = 3; i < n; i++, j += 4) {
    const m = mask[i];
    // The contract's mask is in [0, 1]; clamp anyway so a stray value cannot wrap. A mask
    // of 1 (or more) keeps the input alpha (floor(a + 0.5) = a; already in `out`), so most
    // of a photo's subject is not multiplied at all.
    if (m >= 1) continue;
    out[j] = m > 0 ? Math.floor(rgba[j] * m + 0.5) : 0; // NaN or <= 0: 0
  }
  return out;
}

/** 16-bit samples to 8 bits as round(v / 257), as the Python decoder does. */
export function to8bit(u16, out = new Uint8ClampedArray(u16.length)) {
  for (let i = 0; i < u16.length; i++) out[i] = Math.floor(u16[i] / 257 + 0.5);
  return out;
}

/** Rule 3 again over a rectangle (x1, y1 exclusive) after the mask changed there (the brush):
 *  alpha = floor(alphaIn × m + 0.5), alphaIn null meaning 255 everywhere; RGB untouched. */
export function applyMaskRect(rgba, mask, alphaIn, width, x0, y0, x1, y1) {
  for (let y = y0; y < y1; y++) {
    for (let i = y * width + x0, end = y * width + x1; i < end; i++) {
      let m = mask[i];
      if (!(m > 0)) m = 0; else if (m > 1) m = 1;
      rgba[i * 4 + 3] = Math.floor((alphaIn ? alphaIn[i] : 255) * m + 0.5);
    }
  }
}
