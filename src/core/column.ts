/**
 * A growing column of numbers: a Float64Array whose capacity doubles, so appending k values is
 * amortised O(k) and never a copy of everything so far. Used for a run's train series on both
 * sides of the webview boundary (the host's replay store and the page's chart data).
 */
export class Column {
  data: Float64Array = new Float64Array(1024);
  length = 0;

  push(src: Float64Array): void {
    // A first batch bigger than the buffer (a reload's backlog: up to millions of points) is
    // adopted as is: it is this side's own copy (postMessage cloned or transferred it, or the host
    // built it), so copying it again would only cost time. The next push grows it as below.
    if (this.length === 0 && src.length > this.data.length && src.byteOffset === 0 && src.length === src.buffer.byteLength / 8) {
      this.data = src;
      this.length = src.length;
      return;
    }
    if (this.length + src.length > this.data.length) {
      let cap = this.data.length;
      while (cap < this.length + src.length) cap *= 2;
      const next = new Float64Array(cap);
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    this.data.set(src, this.length);
    this.length += src.length;
  }

  /** The values so far, without a copy (valid until the next push). */
  view(): Float64Array { return this.data.subarray(0, this.length); }

  /** The values so far in a buffer of their own (safe to post; the receiver may adopt it). */
  copy(): Float64Array { return this.data.slice(0, this.length); }

  clear(): void { this.data = new Float64Array(1024); this.length = 0; }
}
