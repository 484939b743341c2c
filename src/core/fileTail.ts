// The end of a file as text: a log's last lines for a tooltip or an error message.
import * as fs from 'node:fs';

/** The last 8 KB of a file as text ('' when missing). */
export function readTail(file: string, bytes = 8192): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, bytes);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally { fs.closeSync(fd); }
  } catch { return ''; }
}
