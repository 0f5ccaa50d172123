// Letting a large buffer's memory go now, not at a garbage collection.
//
// In Chromium, a buffer that came in a message (a photo handed to the finishing worker, a
// band or strip back from a helper) or from the platform (getImageData, a file's bytes) keeps
// its memory until its worker's next garbage collection, and an idle worker may not run one
// for minutes: detaching it with ArrayBuffer.prototype.transfer(0), which frees a buffer the
// worker made itself, leaves such a buffer's memory where it is. Transferred in a message
// that nobody will read, either kind goes with the message when the port is closed (a
// 192 MB buffer in 10 ms, the same as transfer(0)). Measured on the 2-core machine: a 12 MP
// photo's 46 MiB was still held by the finishing worker 19 s after its file was offered,
// beside the next photo; discarded, it went at once.

/** `view` itself if it spans its whole buffer, else a copy that does: a view into a larger
 *  buffer (a codec's WASM memory, say) can then be transferred without taking the rest. */
export function ownBuffer(view) {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? view : view.slice();
}

/** Free the memory of these ArrayBuffers (or views; null skipped) now; they are detached. */
export function discard(...buffers) {
  const list = [];
  for (const b of buffers) {
    const buf = b && (b.buffer || b);
    if (buf instanceof ArrayBuffer && buf.byteLength > 0 && !list.includes(buf)) list.push(buf);
  }
  if (!list.length) return;
  const { port1, port2 } = new MessageChannel();
  for (const buf of list) {
    try {
      port1.postMessage(null, [buf]);
    } catch (_) {
      // not transferable (a view of a WASM memory, say): left to the garbage collector
    }
  }
  port1.close();
  port2.close();
}
