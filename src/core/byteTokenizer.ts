// The built-in models' tokenizer (trainer/finetune_lab/tokenizer.py ByteTokenizer): ids 0..255 are
// the UTF-8 bytes of the text, then bos 256, eos 257, pad 258. Decoding drops the special ids and
// replaces invalid UTF-8 with U+FFFD, as Python's `bytes.decode("utf-8", errors="replace")` does
// (both follow the Unicode "maximal subpart" rule, so the same bytes give the same text).

export interface Tokenizer {
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
}

const encoder = new TextEncoder();

export class ByteTokenizer implements Tokenizer {
  constructor(
    readonly bosId: number | null = 256,
    readonly eosId: number | null = 257,
    readonly padId: number | null = 258,
  ) {}

  encode(text: string): number[] {
    return Array.from(encoder.encode(text));
  }

  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) { const id = ids[i]; if (id >= 0 && id < 256) bytes.push(id); }
    // A fresh decoder per call: a streaming one would carry a partial character over.
    return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(bytes));
  }
}
